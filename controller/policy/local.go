package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// LoadDir reads the policy resources (group policy.linkerd.io) and the
// Namespaces of the manifests in dir (.yaml, .yml, .json, recursively; names starting with
// "." skipped); other kinds are ignored. A malformed policy resource is an
// error naming its file.
func LoadDir(dir string) ([]any, error) {
	var out []any
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		objs, err := DecodeAll(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, objs...)
		return nil
	})
	return out, err
}

// DecodeAll decodes the policy resources and Namespaces of a stream of manifests.
func DecodeAll(data []byte) ([]any, error) {
	var out []any
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		var tm metav1.TypeMeta
		if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &tm) != nil {
			continue
		}
		if tm.APIVersion == "v1" && tm.Kind == "Namespace" {
			ns, err := decodeNamespace(raw)
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", doc, err)
			}
			out = append(out, ns)
			continue
		}
		group, _, _ := strings.Cut(tm.APIVersion, "/")
		if _, ok := policy.Versions[tm.Kind]; group != policy.GroupName || !ok {
			if _, route := policy.HTTPRouteVersions[group]; !route || tm.Kind != policy.KindHTTPRoute {
				continue
			}
		}
		obj, err := policy.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" {
			m.SetNamespace(metav1.NamespaceDefault)
		}
		out = append(out, obj)
	}
}

// decodeNamespace decodes a Namespace, keeping only what policy reads:
// its name and annotations.
func decodeNamespace(raw []byte) (*corev1.Namespace, error) {
	var ns corev1.Namespace
	if err := json.Unmarshal(raw, &ns); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	if ns.Name == "" {
		return nil, fmt.Errorf("namespace without metadata.name")
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Annotations: ns.Annotations}}, nil
}

// WatchDir loads dir into x now and again every interval when its policy
// resources changed, until ctx is done. A directory that fails to load
// keeps the previous resources (a file may be half written); the error is logged.
func WatchDir(ctx context.Context, dir string, interval time.Duration, x *Index, log *slog.Logger) error {
	var last []byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		objs, err := LoadDir(dir)
		if err != nil {
			log.Warn("policy resources not reloaded", "dir", dir, "err", err)
		} else if sum, _ := json.Marshal(objs); !bytes.Equal(sum, last) {
			last = sum
			x.Replace(objs)
			log.Info("policy resources loaded", "dir", dir, "count", len(objs))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
