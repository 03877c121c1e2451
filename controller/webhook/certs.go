package webhook

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertLoader serves a webhook's certificate from PEM files, reloading them
// when they change (a mounted Secret is updated in place).
type CertLoader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // modification times and sizes of the loaded files
	checked time.Time // last look at the files
}

// CertCheckInterval is how often a CertLoader looks at its files.
const CertCheckInterval = 10 * time.Second

// NewCertLoader loads the key pair once, so that a missing or invalid
// certificate fails at startup.
func NewCertLoader(certFile, keyFile string, log *slog.Logger) (*CertLoader, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &CertLoader{certFile: certFile, keyFile: keyFile, log: log}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// TLSConfig returns a server TLS configuration serving the loader's
// certificate.
func (l *CertLoader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: l.GetCertificate}
}

// GetCertificate returns the current certificate, reloading it first when
// the files changed. A failed reload keeps the previous certificate.
func (l *CertLoader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	due := time.Since(l.checked) >= CertCheckInterval
	l.mu.Unlock()
	if due {
		if err := l.reload(); err != nil {
			l.log.Warn("keeping the previous webhook certificate", "error", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cert, nil
}

func (l *CertLoader) reload() error {
	stamp, err := fileStamp(l.certFile, l.keyFile)
	l.mu.Lock()
	l.checked = time.Now()
	same := err == nil && stamp == l.stamp && l.cert != nil
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	if same {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	l.mu.Lock()
	l.cert, l.stamp = &cert, stamp
	l.mu.Unlock()
	return nil
}

// fileStamp identifies the files' versions by modification time and size.
func fileStamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}
