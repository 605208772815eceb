package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the `notify` section of the configuration.
type Config struct {
	// Interval between digests (default 5m): every account with new
	// alerts gets at most one digest per interval, at the interval's
	// boundaries (wall clock, UTC).
	Interval time.Duration `yaml:"interval"`
	// PublicURL is the dashboard's public base URL; each IP in a digest
	// links to PublicURL + "/ui/ip/{ip}" (default http://localhost:8080).
	PublicURL string `yaml:"public_url"`
	// AllowPrivateWebhooks lets webhooks reach private, loopback,
	// link-local and other non-public addresses (refused by default).
	AllowPrivateWebhooks bool `yaml:"allow_private_webhooks"`
	// MaxAlerts bounds the alerts in one digest (default 500); the rest
	// go into the next one.
	MaxAlerts int `yaml:"max_alerts"`
	// RetryMin and RetryMax bound the backoff between attempts of a
	// failed digest (default 10s doubling up to 5m). A digest is retried
	// until delivered; its alerts stay unreported until then.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// WebhookTimeout bounds one webhook POST (default 10s).
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// TestEmailEvery is how often an account may send a test e-mail
	// (default 30s; more often answers 429).
	TestEmailEvery time.Duration `yaml:"test_email_every"`
	// Workers is how many digests are delivered at once (default 4).
	Workers int `yaml:"workers"`
	// SMTP is the mail server; an empty host turns e-mail off.
	SMTP SMTPConfig `yaml:"smtp"`
}

// SMTPConfig is the mail server digests go through.
type SMTPConfig struct {
	Host string `yaml:"host"` // "" = no e-mail
	// Port defaults to 587 (465 with implicit_tls).
	Port     int    `yaml:"port"`
	Username string `yaml:"username"` // "" = no SMTP AUTH
	Password string `yaml:"password"`
	// PasswordFile holds the password instead (read at each delivery;
	// keeps it out of the configuration file).
	PasswordFile string `yaml:"password_file"`
	// From is the sender, e.g. `netwarden <alerts@example.com>`.
	From string `yaml:"from"`
	// StartTLS: mandatory (default: refuse a server without STARTTLS),
	// opportunistic (use it when offered) or none.
	StartTLS string `yaml:"starttls"`
	// ImplicitTLS speaks TLS from the first byte (SMTPS, port 465).
	ImplicitTLS bool `yaml:"implicit_tls"`
	// CAFile adds PEM certificates to trust for the server (private CAs).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds connecting and each SMTP command (default 15s);
	// SendTimeout one whole delivery (default 1m).
	Timeout     time.Duration `yaml:"timeout"`
	SendTimeout time.Duration `yaml:"send_timeout"`
	// HELO name (default: the library's, the local host name).
	HELO string `yaml:"helo"`
}

// STARTTLS modes.
const (
	StartTLSMandatory     = "mandatory"
	StartTLSOpportunistic = "opportunistic"
	StartTLSNone          = "none"
)

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Interval == 0 {
		c.Interval = 5 * time.Minute
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MaxAlerts == 0 {
		c.MaxAlerts = 500
	}
	if c.RetryMin == 0 {
		c.RetryMin = 10 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 10 * time.Second
	}
	if c.TestEmailEvery == 0 {
		c.TestEmailEvery = 30 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	s := &c.SMTP
	if s.Port == 0 {
		s.Port = 587
		if s.ImplicitTLS {
			s.Port = 465
		}
	}
	if s.StartTLS == "" {
		s.StartTLS = StartTLSMandatory
	}
	if s.Timeout == 0 {
		s.Timeout = 15 * time.Second
	}
	if s.SendTimeout == 0 {
		s.SendTimeout = time.Minute
	}
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("notify.interval %v: at least 1s", c.Interval))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("notify.public_url %q: want an absolute http(s) URL without query", c.PublicURL))
	}
	if c.MaxAlerts < 1 || c.Workers < 1 {
		errs = append(errs, errors.New("notify.max_alerts and notify.workers must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("notify.retry_min %v, retry_max %v: want 0 < retry_min <= retry_max", c.RetryMin, c.RetryMax))
	}
	if c.TestEmailEvery < 0 {
		errs = append(errs, errors.New("notify.test_email_every must not be negative"))
	}
	if c.WebhookTimeout <= 0 {
		errs = append(errs, errors.New("notify.webhook_timeout must be positive"))
	}
	s := c.SMTP
	if s.Host != "" {
		if strings.ContainsAny(s.Host, " \r\n/") {
			errs = append(errs, fmt.Errorf("notify.smtp.host %q: not a host name", s.Host))
		}
		if s.Port < 1 || s.Port > 65535 {
			errs = append(errs, fmt.Errorf("notify.smtp.port %d: out of range", s.Port))
		}
		if a, err := mail.ParseAddress(s.From); s.From == "" || err != nil || strings.ContainsAny(s.From, "\r\n") || a.Address == "" {
			errs = append(errs, fmt.Errorf("notify.smtp.from %q: want an address like `netwarden <alerts@example.com>`", s.From))
		}
		switch s.StartTLS {
		case StartTLSMandatory, StartTLSOpportunistic, StartTLSNone:
		default:
			errs = append(errs, fmt.Errorf("notify.smtp.starttls %q: want mandatory, opportunistic or none", s.StartTLS))
		}
		if (s.Password != "" || s.PasswordFile != "") && s.Username == "" {
			errs = append(errs, errors.New("notify.smtp.password is set but notify.smtp.username is empty"))
		}
		if s.Password != "" && s.PasswordFile != "" {
			errs = append(errs, errors.New("notify.smtp.password and notify.smtp.password_file are both set"))
		}
		if s.PasswordFile != "" {
			if _, err := os.Stat(s.PasswordFile); err != nil {
				errs = append(errs, fmt.Errorf("notify.smtp.password_file: %w", err))
			}
		}
		if s.CAFile != "" {
			if _, err := os.Stat(s.CAFile); err != nil {
				errs = append(errs, fmt.Errorf("notify.smtp.ca_file: %w", err))
			}
		}
		if s.Timeout <= 0 || s.SendTimeout <= 0 {
			errs = append(errs, errors.New("notify.smtp.timeout and notify.smtp.send_timeout must be positive"))
		}
	}
	return errors.Join(errs...)
}
