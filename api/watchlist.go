package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/watchlist"
)

// Watchlists keeps accounts' watched and muted entries
// (watchlist.Service).
type Watchlists interface {
	Import(ctx context.Context, a account.Account, l account.EntryList, r io.Reader, f watchlist.Format) (watchlist.Result, error)
	Entries(ctx context.Context, a account.Account, l account.EntryList, page, items int) (watchlist.Page, error)
	Entry(ctx context.Context, a account.Account, l account.EntryList, p netip.Prefix) (account.Entry, error)
	Remove(ctx context.Context, a account.Account, l account.EntryList, p netip.Prefix) error
	RemoveAll(ctx context.Context, a account.Account, l account.EntryList) (int64, error)
	Usage(ctx context.Context, a account.Account) (watchlist.Usage, error)
	MaxImportBytes() int64
	ImportTimeout() time.Duration
}

// Paging of GET /v1/alerts/watchlist and /v1/alerts/mutes.
const (
	defaultItems = 100
	maxItems     = 10_000
)

// watchRoutes registers the watchlist and mute routes on the /v1 group:
//
//	POST   /alerts/watchlist          import (text: one IP or CIDR a line; JSON {"entries": [...]})
//	GET    /alerts/watchlist          page through entries (?page=&items=)
//	DELETE /alerts/watchlist          remove every entry
//	GET    /alerts/watchlist/{entry}  one entry (404 unless watched exactly)
//	DELETE /alerts/watchlist/{entry}  remove one entry
//
// and the same under /alerts/mutes, plus POST /alerts/mutes/{entry} to
// mute one.
func (s *Server) watchRoutes(v1 *gin.RouterGroup) {
	for _, l := range []struct {
		path string
		list account.EntryList
	}{{"/alerts/watchlist", account.Watchlist}, {"/alerts/mutes", account.Mutes}} {
		v1.POST(l.path, s.importEntries(l.list))
		get(v1, l.path, s.listEntries(l.list))
		v1.DELETE(l.path, s.removeEntries(l.list))
		get(v1, l.path+"/*entry", s.entry(l.list))
		v1.DELETE(l.path+"/*entry", s.removeEntry(l.list))
	}
	v1.POST("/alerts/mutes/*entry", s.muteOne)
}

// watchlists returns the dependency and the key's account, or fails the
// request.
func (s *Server) watchlists(c *gin.Context) (Watchlists, account.Account, bool) {
	p, ok := s.keyed(c, "watchlists", s.deps.Watchlists != nil)
	return s.deps.Watchlists, p.Account, ok
}

// listTotals is the list's size and limit as an answer shows them.
func listTotals(u watchlist.Usage, l account.EntryList) gin.H {
	if l == account.Mutes {
		return gin.H{"muted": u.Mutes, "limit": u.MutesLimit}
	}
	return gin.H{"watched": u.Watched, "limit": u.WatchedLimit, "entries": u.WatchedEntries}
}

// answerTotals answers 200: the list's size and limit, then extra (which
// wins on a shared key).
func (s *Server) answerTotals(c *gin.Context, w Watchlists, a account.Account, l account.EntryList, extra gin.H) {
	u, err := w.Usage(c.Request.Context(), a)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := listTotals(u, l)
	maps.Copy(out, extra)
	c.JSON(http.StatusOK, out)
}

// bodyFormat tells JSON from text: a JSON content type, or a body whose
// first non-blank byte is '{'.
func bodyFormat(c *gin.Context, br *bufio.Reader) watchlist.Format {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return watchlist.JSON
	}
	head, _ := br.Peek(512)
	head = []byte(strings.TrimLeft(strings.TrimPrefix(string(head), "\ufeff"), " \t\r\n"))
	if len(head) > 0 && head[0] == '{' {
		return watchlist.JSON
	}
	return watchlist.Text
}

func (s *Server) importEntries(l account.EntryList) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, a, ok := s.watchlists(c)
		if !ok {
			return
		}
		limit := w.MaxImportBytes()
		if c.Request.ContentLength > limit {
			s.fail(c, &bodyError{fmt.Sprintf("body exceeds %s (watchlist.max_import_bytes)", byteSize(limit)), &http.MaxBytesError{Limit: limit}})
			return
		}
		// The import is applied while the body streams in: the request
		// gets watchlist.import_timeout instead of the server's read and
		// write timeouts.
		rc := http.NewResponseController(c.Writer)
		deadline := time.Now().Add(w.ImportTimeout())
		if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline)); err != nil {
			s.fail(c, fmt.Errorf("extend the deadlines of an import: %w", err))
			return
		}
		br := bufio.NewReaderSize(http.MaxBytesReader(c.Writer, c.Request.Body, limit), 64<<10)
		res, err := w.Import(c.Request.Context(), a, l, br, bodyFormat(c, br))
		if err != nil {
			s.fail(c, err)
			return
		}
		s.answerTotals(c, w, a, l, gin.H{"imported": res.Imported, "already": res.Already, "rejected": res.Rejected, "rejected_total": res.RejectedTotal})
	}
}

func (s *Server) listEntries(l account.EntryList) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, a, ok := s.watchlists(c)
		if !ok {
			return
		}
		items, err := intParam(c, "items", defaultItems, 1, maxItems)
		if err != nil {
			s.fail(c, err)
			return
		}
		page, err := intParam(c, "page", 1, 1, 1<<30)
		if err != nil {
			s.fail(c, err)
			return
		}
		pg, err := w.Entries(c.Request.Context(), a, l, int(page), int(items))
		if err != nil {
			s.fail(c, err)
			return
		}
		s.answerTotals(c, w, a, l, gin.H{"entries": pg.Entries, "page": pg.Page, "items": pg.Items, "total": pg.Total})
	}
}

// entryParam parses the {entry} path segment: an IP or CIDR (the
// slash of a CIDR may be sent as is or as %2F).
func entryParam(c *gin.Context) (netip.Prefix, error) {
	raw := strings.TrimPrefix(c.Param("entry"), "/")
	if raw == "" {
		return netip.Prefix{}, badRequest("missing the IP or CIDR after %s/", strings.TrimSuffix(c.FullPath(), "/*entry"))
	}
	p, err := watchlist.ParseEntry(raw)
	if err != nil {
		return netip.Prefix{}, badRequest("%q: %v", raw, err)
	}
	return p, nil
}

func (s *Server) entry(l account.EntryList) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, a, ok := s.watchlists(c)
		if !ok {
			return
		}
		p, err := entryParam(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		e, err := w.Entry(c.Request.Context(), a, l, p)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, e)
	}
}

func (s *Server) removeEntry(l account.EntryList) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, a, ok := s.watchlists(c)
		if !ok {
			return
		}
		p, err := entryParam(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := w.Remove(c.Request.Context(), a, l, p); err != nil {
			s.fail(c, err)
			return
		}
		s.answerTotals(c, w, a, l, gin.H{"removed": p})
	}
}

func (s *Server) removeEntries(l account.EntryList) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, a, ok := s.watchlists(c)
		if !ok {
			return
		}
		n, err := w.RemoveAll(c.Request.Context(), a, l)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.answerTotals(c, w, a, l, gin.H{"removed": n})
	}
}

// muteOne answers POST /v1/alerts/mutes/{entry}: mute one IP or CIDR
// (the dashboard's Mute button).
func (s *Server) muteOne(c *gin.Context) {
	w, a, ok := s.watchlists(c)
	if !ok {
		return
	}
	p, err := entryParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := w.Import(c.Request.Context(), a, account.Mutes, strings.NewReader(p.String()), watchlist.Text)
	if err != nil {
		s.fail(c, err)
		return
	}
	if len(res.Rejected) > 0 {
		s.fail(c, fmt.Errorf("%w: mute %s: %s", account.ErrInvalid, p, res.Rejected[0].Reason))
		return
	}
	e, err := w.Entry(c.Request.Context(), a, account.Mutes, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	code := http.StatusCreated
	if res.Imported == 0 {
		code = http.StatusOK // muted already
	}
	c.JSON(code, e)
}
