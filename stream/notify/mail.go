package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"strings"
	texttemplate "text/template"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/netwarden/netwarden/internal/account"
)

// item is one alert as a digest shows it.
type item struct {
	account.Alert
	URL string // the resource's dashboard page
}

// view is what the digest templates render.
type view struct {
	Account   account.Account
	Items     []item
	Dashboard string
	Sent      time.Time
}

var funcs = map[string]any{"join": strings.Join, "num": num, "outageWhat": outageWhat}

var textDigest = texttemplate.Must(texttemplate.New("text").Funcs(texttemplate.FuncMap(funcs)).Parse(
	`netwarden: {{len .Items}} new alert{{if ne (len .Items) 1}}s{{end}} for {{.Account.Email}}
{{range .Items}}{{if .Outage}}{{with .Outage}}
- {{.EntityName}} ({{.EntityType}} {{.EntityCode}}): {{outageWhat .}} ({{$.Time .Time}})
  value {{num .Value}} {{.Condition}}, historical {{num .HistoryValue}} ({{.Method}} over {{$.Window .Window}})
{{- end}}
  {{.URL}}
{{else}}
- {{.Resource}} {{if eq .Kind "cleared"}}left its last list{{else if eq .Kind "initial"}}was already on {{.List}} when imported{{else}}entered {{.List}}{{end}} ({{.Created.UTC.Format "2006-01-02 15:04:05Z"}})
  watched entry: {{.Watched}}{{if .Lists}}; now on: {{join .Lists ", "}}{{end}}
  {{.URL}}
{{end}}{{end}}
All alerts: {{.Dashboard}}
`))

var htmlDigest = htmltemplate.Must(htmltemplate.New("html").Funcs(htmltemplate.FuncMap(funcs)).Parse(
	`<!doctype html>
<html><body style="font-family:sans-serif">
<h2>netwarden: {{len .Items}} new alert{{if ne (len .Items) 1}}s{{end}}</h2>
<p>For {{.Account.Email}}.</p>
{{if .Blocklist}}<table cellpadding="4" style="border-collapse:collapse">
<tr><th align="left">Address</th><th align="left">Event</th><th align="left">Watched entry</th><th align="left">Now on</th><th align="left">When (UTC)</th></tr>
{{range .Items}}{{if not .Outage}}<tr><td><a href="{{.URL}}">{{.Resource}}</a></td><td>{{if eq .Kind "cleared"}}left its last list{{else if eq .Kind "initial"}}already on {{.List}}{{else}}entered {{.List}}{{end}}</td><td>{{.Watched}}</td><td>{{join .Lists ", "}}</td><td>{{.Created.UTC.Format "2006-01-02 15:04:05"}}</td></tr>
{{end}}{{end}}</table>
{{end}}{{if .Outages}}<h3>Outages of your subscriptions</h3>
<table cellpadding="4" style="border-collapse:collapse">
<tr><th align="left">Entity</th><th align="left">Event</th><th align="left">Value</th><th align="left">Condition</th><th align="left">Historical</th><th align="left">When (UTC)</th></tr>
{{range .Items}}{{$url := .URL}}{{with .Outage}}<tr><td><a href="{{$url}}">{{.EntityName}}</a> ({{.EntityType}} {{.EntityCode}})</td><td>{{outageWhat .}}</td><td>{{num .Value}}</td><td>{{.Condition}}</td><td>{{num .HistoryValue}}</td><td>{{$.Time .Time}}</td></tr>
{{end}}{{end}}</table>
{{end}}<p><a href="{{.Dashboard}}">All alerts in the dashboard</a></p>
</body></html>
`))

// outageWhat says what an outage alert means: "critical on bgp",
// "recovered on ping-slash24".
func outageWhat(o *account.Outage) string {
	if o.Level == "normal" {
		return "recovered on " + o.Datasource
	}
	return o.Level + " on " + o.Datasource
}

// num renders a signal value: integers plainly, others with 2 decimals.
func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

// Time renders an outage alert's unix time.
func (view) Time(unix int64) string { return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05Z") }

// Window renders a baseline window in hours or days.
func (view) Window(sec int64) string {
	if sec%86400 == 0 {
		return fmt.Sprintf("%dd", sec/86400)
	}
	return (time.Duration(sec) * time.Second).String()
}

// Blocklist and Outages say which kinds of alerts the digest holds.
func (v view) Blocklist() bool { return v.count(false) > 0 }

// Outages: see Blocklist.
func (v view) Outages() bool { return v.count(true) > 0 }

func (v view) count(outage bool) int {
	n := 0
	for _, it := range v.Items {
		if (it.Outage != nil) == outage {
			n++
		}
	}
	return n
}

func (n *Notifier) ipURL(resource string) string {
	return n.cfg.PublicURL + "/ui/ip/" + resource
}

// alertURL is an alert's dashboard page: the address's, or for an outage
// alert its entity's (/ui/entity/{type}/{code}).
func (n *Notifier) alertURL(a account.Alert) string {
	if a.Outage != nil {
		return n.cfg.PublicURL + "/ui/entity/" + a.Outage.EntityType + "/" + a.Outage.EntityCode
	}
	return n.ipURL(a.Resource)
}

func (n *Notifier) view(d *digest, now time.Time) view {
	v := view{Account: d.acct, Dashboard: n.cfg.PublicURL + "/ui/", Sent: now}
	for _, a := range d.alerts {
		v.Items = append(v.Items, item{Alert: a, URL: n.alertURL(a)})
	}
	return v
}

// render returns a digest's subject, plain text and HTML. The subject
// holds only constants and a number: no user field reaches a header.
func (n *Notifier) render(d *digest, now time.Time) (subject, text, html string, err error) {
	v := n.view(d, now)
	var tb, hb strings.Builder
	if err := textDigest.Execute(&tb, v); err != nil {
		return "", "", "", fmt.Errorf("render digest text: %w", err)
	}
	if err := htmlDigest.Execute(&hb, v); err != nil {
		return "", "", "", fmt.Errorf("render digest html: %w", err)
	}
	return digestSubject(v.count(false), v.count(true)), tb.String(), hb.String(), nil
}

// digestSubject names the digest from numbers only: "netwarden: 2 new alerts
// on your watched addresses", "... 1 new outage alert on your
// subscriptions", or both counts.
func digestSubject(blocklist, outages int) string {
	plural := func(n int) string {
		if n == 1 {
			return ""
		}
		return "s"
	}
	switch {
	case outages == 0:
		return fmt.Sprintf("netwarden: %d new alert%s on your watched addresses", blocklist, plural(blocklist))
	case blocklist == 0:
		return fmt.Sprintf("netwarden: %d new outage alert%s on your subscriptions", outages, plural(outages))
	}
	return fmt.Sprintf("netwarden: %d new alerts: %d on your watched addresses, %d outage%s on your subscriptions", blocklist+outages, blocklist, outages, plural(outages))
}

// recipients re-validates addresses (bare, no display name, no CR/LF or
// separators): settings are validated when saved, this guards the
// headers whatever the stored data holds.
func recipients(to []string) ([]string, error) {
	var out []string
	for _, r := range to {
		a, err := account.NormalizeEmail(r)
		if err != nil {
			return nil, fmt.Errorf("%w: recipient: %w", errPermanent, err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no recipient", errPermanent)
	}
	return out, nil
}

func (n *Notifier) sendDigestMail(ctx context.Context, d *digest, to []string, now time.Time) error {
	subject, text, html, err := n.render(d, now)
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	return n.sendMail(ctx, to, subject, text, html, now)
}

// TestEmail sends a short test message to the recipients now.
func (n *Notifier) TestEmail(ctx context.Context, a account.Account, to []string) error {
	if n.cfg.SMTP.Host == "" {
		return ErrNotConfigured
	}
	now := n.clock.Now()
	n.testMu.Lock()
	if last, ok := n.lastTest[a.ID]; ok && now.Sub(last) < n.cfg.TestEmailEvery {
		n.testMu.Unlock()
		return fmt.Errorf("%w: one test e-mail per %v; try again in %v", account.ErrQuota, n.cfg.TestEmailEvery, (n.cfg.TestEmailEvery - now.Sub(last)).Round(time.Second))
	}
	n.lastTest[a.ID] = now
	n.testMu.Unlock()
	text := fmt.Sprintf("This is a test e-mail from netwarden for %s.\n\nAlert digests come from this sender to these recipients: %s.\nDashboard: %s/ui/\n", a.Email, strings.Join(to, ", "), n.cfg.PublicURL)
	html := htmltemplate.HTMLEscapeString(text)
	html = "<!doctype html><html><body><p>" + strings.ReplaceAll(html, "\n", "<br>\n") + "</p></body></html>\n"
	err := n.sendMail(ctx, to, "netwarden test e-mail", text, html, now)
	if err != nil {
		return fmt.Errorf("%w: test e-mail: %w", ErrDelivery, err)
	}
	return nil
}

// sendMail sends one message with a plain text and an HTML part.
func (n *Notifier) sendMail(ctx context.Context, to []string, subject, text, html string, now time.Time) error {
	rcpts, err := recipients(to)
	if err != nil {
		return err
	}
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := m.From(n.cfg.SMTP.From); err != nil {
		return fmt.Errorf("%w: sender %q: %w", errPermanent, n.cfg.SMTP.From, err)
	}
	if err := m.To(rcpts...); err != nil {
		return fmt.Errorf("%w: recipients: %w", errPermanent, err)
	}
	m.Subject(subject)
	m.SetDateWithValue(now)
	m.SetMessageID()
	m.SetUserAgent("netwarden")
	m.SetBodyString(mail.TypeTextPlain, text)
	m.AddAlternativeString(mail.TypeTextHTML, html)

	c, err := n.mailClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SMTP.SendTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.Reason == mail.ErrSMTPRcptTo {
			return fmt.Errorf("%w: smtp %s:%d: %w", errPermanent, n.cfg.SMTP.Host, n.cfg.SMTP.Port, err)
		}
		return fmt.Errorf("smtp %s:%d: %w", n.cfg.SMTP.Host, n.cfg.SMTP.Port, err)
	}
	return nil
}

// mailClient makes a go-mail client for one delivery.
func (n *Notifier) mailClient() (*mail.Client, error) {
	s := n.cfg.SMTP
	if s.Host == "" {
		return nil, ErrNotConfigured
	}
	tc := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read notify.smtp.ca_file %q: %w", s.CAFile, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notify.smtp.ca_file %q: no PEM certificate", s.CAFile)
		}
		tc.RootCAs = pool
	}
	opts := []mail.Option{mail.WithPort(s.Port), mail.WithTimeout(s.Timeout), mail.WithTLSConfig(tc)}
	if s.ImplicitTLS {
		opts = append(opts, mail.WithSSL())
	} else {
		policy := mail.TLSMandatory
		switch s.StartTLS {
		case StartTLSOpportunistic:
			policy = mail.TLSOpportunistic
		case StartTLSNone:
			policy = mail.NoTLS
		}
		opts = append(opts, mail.WithTLSPolicy(policy))
	}
	if s.Username != "" {
		pass := s.Password
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("read notify.smtp.password_file: %w", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.Username), mail.WithPassword(pass))
	}
	if s.HELO != "" {
		opts = append(opts, mail.WithHELO(s.HELO))
	}
	c, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}
