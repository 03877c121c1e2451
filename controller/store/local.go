package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultPollInterval is how often Local looks for changed files.
const DefaultPollInterval = 300 * time.Millisecond

// recentWindow: files modified this recently are re-read on every poll even
// when their size and modification time look unchanged, because a second
// write within the file system's timestamp granularity is invisible to stat.
const recentWindow = 2 * time.Second

// Local is a Store fed by a directory of Kubernetes-style manifests (files
// ending in .yaml, .yml or .json, in the directory and its subdirectories;
// names starting with "." are skipped). Each file may hold any number of
// documents. The directory is polled: a changed file takes effect within one
// poll interval, like `kubectl apply`; a removed file deletes its objects.
//
// A file that fails to parse keeps its previous objects (it may be in the
// middle of being written) and the error is logged. When two files define
// the same object, the one whose path sorts last wins.
type Local struct {
	*Memory
	dir      string
	interval time.Duration
	log      *slog.Logger

	// Owned by the goroutine running Run (or Scan).
	files map[string]*fileState
}

type fileState struct {
	modTime time.Time
	size    int64
	hash    [sha256.Size]byte
	objects []metav1.Object
}

var _ Store = (*Local)(nil)

// NewLocal returns a store over the manifests in dir, polled every interval
// (DefaultPollInterval when zero). The directory must exist.
func NewLocal(dir string, interval time.Duration, log *slog.Logger) (*Local, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("local store: %s is not a directory", dir)
	}
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Local{
		Memory:   NewMemory(),
		dir:      dir,
		interval: interval,
		log:      log.With("dir", dir),
		files:    map[string]*fileState{},
	}, nil
}

// Run implements Store: it scans the directory now and then every poll
// interval until ctx is done.
func (l *Local) Run(ctx context.Context) error {
	l.Scan()
	l.MarkSynced()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.Scan()
		}
	}
}

// Scan reads the directory once, updates the store and delivers the events
// for what changed. Run calls it; it must not be called concurrently with
// Run or itself.
func (l *Local) Scan() {
	paths, err := l.list()
	if err != nil {
		l.log.Warn("listing manifests; keeping the previous state", "err", err)
		return
	}
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		l.refreshFile(p)
	}
	for p := range l.files {
		if !seen[p] {
			delete(l.files, p)
		}
	}

	// The desired state, later paths winning.
	desired := map[Key]metav1.Object{}
	from := map[Key]string{}
	order := []Key{}
	for _, p := range paths {
		st := l.files[p]
		if st == nil {
			continue
		}
		for _, obj := range st.objects {
			k := Key{Kind: kindOf(obj), Namespace: obj.GetNamespace(), Name: obj.GetName()}
			if prev, dup := from[k]; dup && prev != p {
				l.log.Warn("object defined in two files; using the later one", "object", k.String(), "files", []string{prev, p})
			}
			if _, dup := desired[k]; !dup {
				order = append(order, k)
			}
			desired[k] = obj
			from[k] = p
		}
	}
	objs := make([]metav1.Object, 0, len(order))
	for _, k := range order {
		objs = append(objs, desired[k])
	}
	l.Replace(objs)
}

// list returns the manifest files under the directory, sorted.
func (l *Local) list() ([]string, error) {
	var paths []string
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == l.dir {
				return err
			}
			l.log.Warn("skipping unreadable path", "path", p, "err", err)
			return nil
		}
		name := d.Name()
		if p != l.dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".yaml", ".yml", ".json":
			paths = append(paths, p)
		}
		return nil
	})
	slices.Sort(paths)
	return paths, err
}

// refreshFile re-reads p when it may have changed.
func (l *Local) refreshFile(p string) {
	info, err := os.Stat(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.log.Warn("reading manifest; keeping its previous objects", "path", p, "err", err)
		}
		return
	}
	st := l.files[p]
	if st != nil && st.modTime.Equal(info.ModTime()) && st.size == info.Size() &&
		time.Since(info.ModTime()).Abs() > recentWindow {
		return
	}
	data, err := os.ReadFile(p)
	if err != nil {
		l.log.Warn("reading manifest; keeping its previous objects", "path", p, "err", err)
		return
	}
	hash := sha256.Sum256(data)
	if st == nil {
		st = &fileState{}
		l.files[p] = st
	} else if st.hash == hash {
		st.modTime, st.size = info.ModTime(), info.Size()
		return
	}
	st.modTime, st.size, st.hash = info.ModTime(), info.Size(), hash
	dec, err := DecodeObjects(data)
	if err != nil {
		// Keep the previous objects; the hash is recorded so the error is
		// logged once per version of the file.
		l.log.Warn("parsing manifest; keeping its previous objects", "path", p, "err", err)
		return
	}
	if dec.Ignored > 0 {
		l.log.Debug("ignored documents of other kinds", "path", p, "count", dec.Ignored)
	}
	st.objects = dec.Objects
	l.log.Debug("loaded manifest", "path", p, "objects", len(dec.Objects))
}
