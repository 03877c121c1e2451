package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// DefaultPollInterval is how often a Watcher looks for changed files.
const DefaultPollInterval = 5 * time.Second

// IssuerFiles names the files holding the issuer and the trust anchors.
type IssuerFiles struct {
	// Cert is the issuer certificate (PEM; may be followed by
	// intermediates).
	Cert string
	// Key is the issuer's private key (PEM, PKCS#8 or SEC 1).
	Key string
	// TrustAnchors is the trust-anchor bundle (PEM), e.g. ca-bundle.crt.
	TrustAnchors string
}

// IssuerFilesInDir returns the file names of an issuer Secret mounted at
// dir, for the given scheme (identity.IssuerSchemeLinkerd or identity.IssuerSchemeKubernetes).
func IssuerFilesInDir(dir, scheme, trustAnchors string) (IssuerFiles, error) {
	switch scheme {
	case identity.IssuerSchemeLinkerd, "":
		return IssuerFiles{Cert: filepath.Join(dir, "crt.pem"), Key: filepath.Join(dir, "key.pem"), TrustAnchors: trustAnchors}, nil
	case identity.IssuerSchemeKubernetes:
		return IssuerFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), TrustAnchors: trustAnchors}, nil
	}
	return IssuerFiles{}, fmt.Errorf("unknown identity scheme %q (want %s or %s)", scheme, identity.IssuerSchemeLinkerd, identity.IssuerSchemeKubernetes)
}

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Files IssuerFiles
	// Interval between polls; zero means DefaultPollInterval.
	Interval time.Duration
	// OnLoad receives every newly loaded, verified issuer. Required.
	OnLoad func(*pki.CA)
	// Metrics receives reload counts; nil means metrics nobody exports.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Watcher loads the issuer and trust anchors from files and reloads them
// when their contents change. A new issuer replaces the old one only if it
// parses, its key matches, it is currently valid and it chains to the trust
// anchors; otherwise the failure is logged and the old issuer stays.
type Watcher struct {
	cfg     WatcherConfig
	log     *slog.Logger
	metrics *Metrics
	trigger chan struct{}

	mu         sync.Mutex // serializes Reload
	loaded     [sha256.Size]byte
	haveLoaded bool
	lastFail   string // fingerprint and error of the last reported failure
}

// NewWatcher returns a Watcher; call Reload for the first load and Run to
// keep watching.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.OnLoad == nil {
		return nil, errors.New("issuer watcher: no OnLoad function")
	}
	if cfg.Files.Cert == "" || cfg.Files.Key == "" || cfg.Files.TrustAnchors == "" {
		return nil, errors.New("issuer watcher: issuer certificate, key and trust anchor files are all required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, trigger: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.metrics == nil {
		w.metrics = newUnregisteredMetrics()
	}
	return w, nil
}

// Reload reads the files and, if their contents differ from the issuer
// last loaded, loads and verifies them and hands the new issuer to OnLoad.
// It reports whether a new issuer was loaded. A failure is logged and
// counted once per distinct file contents and error, but retried on every
// call (a certificate that is not valid yet may become valid).
func (w *Watcher) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	certPEM, keyPEM, anchorsPEM, readErr := w.read()
	fp := fingerprint(certPEM, keyPEM, anchorsPEM)
	if readErr == nil && w.haveLoaded && fp == w.loaded {
		return false, nil
	}
	var iss *pki.CA
	err := readErr
	if err == nil {
		iss, err = loadVerified(certPEM, keyPEM, anchorsPEM)
	}
	if err != nil {
		failure := fmt.Sprintf("%x %v", fp, err)
		if failure != w.lastFail {
			w.lastFail = failure
			w.metrics.reloads.WithLabelValues(ReloadFailure).Inc()
			if w.haveLoaded {
				w.log.Error("new issuer rejected; keeping the current one", "err", err)
			} else {
				w.log.Error("cannot load issuer; not ready", "err", err)
			}
		}
		return false, err
	}
	w.loaded, w.haveLoaded, w.lastFail = fp, true, ""
	w.cfg.OnLoad(iss)
	w.metrics.reloads.WithLabelValues(ReloadSuccess).Inc()
	w.log.Info("loaded issuer",
		"subject", iss.Cert.Subject.CommonName,
		"serial", iss.Cert.SerialNumber.Text(16),
		"not_after", iss.Cert.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// Trigger asks Run to reload now rather than at the next poll. It never
// blocks.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Run polls the files every Interval, and whenever Trigger is called, until
// ctx is done. It returns nil when ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.trigger:
		}
		_, _ = w.Reload() // failures are logged and counted by Reload
	}
}

func (w *Watcher) read() (certPEM, keyPEM, anchorsPEM []byte, err error) {
	f := w.cfg.Files
	if certPEM, err = os.ReadFile(f.Cert); err != nil {
		return nil, nil, nil, fmt.Errorf("read issuer certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(f.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("read issuer key: %w", err)
	}
	if anchorsPEM, err = os.ReadFile(f.TrustAnchors); err != nil {
		return nil, nil, nil, fmt.Errorf("read trust anchors: %w", err)
	}
	return certPEM, keyPEM, anchorsPEM, nil
}

// loadVerified parses the issuer and anchors and checks the issuer is
// usable now.
func loadVerified(certPEM, keyPEM, anchorsPEM []byte) (*pki.CA, error) {
	anchors, err := pki.DecodeCertificatesPEM(anchorsPEM)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	ca, err := pki.LoadIssuer(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	// A bundle that repeats the anchor after the issuer is common; the
	// anchor does not belong in the chain sent to proxies.
	ca.Intermediates = withoutAnchors(ca.Intermediates, anchors)
	if err := pki.VerifyIssuer(ca, anchors); err != nil {
		return nil, fmt.Errorf("verify issuer against the trust anchors: %w", err)
	}
	return ca, nil
}

func withoutAnchors(certs, anchors []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range certs {
		isAnchor := false
		for _, a := range anchors {
			if bytes.Equal(c.Raw, a.Raw) {
				isAnchor = true
				break
			}
		}
		if !isAnchor {
			out = append(out, c)
		}
	}
	return out
}

// fingerprint hashes the three files' contents, length-prefixed so that
// moving bytes between files changes it.
func fingerprint(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
