package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// The outside world of a check run against a real cluster: the API
// server's clock and the local kubectl.

// APIServerTime reads the API server's clock from the Date header of its
// /version response.
func APIServerTime(ctx context.Context, cfg *rest.Config) (time.Time, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return time.Time{}, fmt.Errorf("http client: %w", err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return time.Time{}, fmt.Errorf("API server URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base.String(), "/")+"/version", nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("GET /version: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	date := resp.Header.Get("Date")
	if date == "" {
		return time.Time{}, errors.New("the API server's response has no Date header")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return time.Time{}, fmt.Errorf("the API server's Date header %q: %w", date, err)
	}
	return t, nil
}

// LocalKubectlVersion runs `kubectl version --client -o json`.
func LocalKubectlVersion(ctx context.Context) (string, error) {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		return "", errors.New("kubectl not found on PATH: install it to apply Linkerd's manifests")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version", "--client", "-o", "json").Output()
	if err != nil {
		return "", fmt.Errorf("running %s version --client: %w", path, err)
	}
	var v struct {
		ClientVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"clientVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.ClientVersion.GitVersion == "" {
		return "", fmt.Errorf("cannot read the version printed by %s version --client", path)
	}
	return v.ClientVersion.GitVersion, nil
}
