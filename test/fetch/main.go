// Command fetch is a tiny HTTP client for the test images (there is no
// shell or curl in them): it GETs a URL, retrying until the response is a
// 2xx or the deadline passes, and prints the body.
//
//	fetch [-timeout 30s] [-interval 500ms] [-count 1] [-header 'Name: value']... URL
//
// With -count N it makes N successful requests, each on a new connection
// (so a Service's load balancing shows), printing each body on its own
// line. It exits 0 after the last 2xx response, 1 when the deadline passes
// (printing the last error or status), and 2 on bad usage. Inside a pod it
// resolves Service names through the cluster DNS like any other client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// headers collects repeated -header flags.
type headers []string

func (h *headers) String() string { return strings.Join(*h, ", ") }

func (h *headers) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want 'Name: value'", v)
	}
	*h = append(*h, v)
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	interval := fs.Duration("interval", 500*time.Millisecond, "pause between attempts")
	count := fs.Int("count", 1, "successful requests to make, each on a new connection")
	var hdrs headers
	fs.Var(&hdrs, "header", "request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || *timeout <= 0 || *interval <= 0 || *count < 1 {
		fmt.Fprintln(stderr, "usage: fetch [-timeout D] [-interval D] [-count N] [-header 'Name: value']... URL")
		return 2
	}
	url := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var last error
	for done := 0; ; {
		body, err := get(ctx, client, url, hdrs)
		if err == nil {
			stdout.Write(body)
			if done++; done == *count {
				return 0
			}
			if *count > 1 {
				_, _ = io.WriteString(stdout, "\n")
			}
			continue
		}
		// An attempt the deadline cut short says less than the answer
		// before it: keep that one.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "fetch %s: giving up after %v: %v\n", url, *timeout, last)
			return 1
		case <-time.After(*interval):
		}
	}
}

// maxBody bounds what is read from one response.
const maxBody = 4 << 20

func get(ctx context.Context, client *http.Client, url string, hdrs headers) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range hdrs {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
