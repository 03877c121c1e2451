package h2

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkStream is one HTTP/2 request/response of 128 bytes each way on
// a loopback connection, with this package's client and server and with
// net/http's, and mixed: it shows what each side costs (run it with -cpu 1,
// as a pinned proxy runs).
func BenchmarkStream(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 128)
	echo := func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) }
	ours := func(b *testing.B) string { a, _ := serve(b, echoPlain); return a }
	theirs := func(b *testing.B) string { return netHTTPServer(b, echo) }

	oursClient := func(b *testing.B, addr string) {
		cc := dialClient(b, addr)
		fields := reqFields("POST", "/echo", Field{Name: "content-length", Value: "128"})
		b.ReportAllocs()
		for b.Loop() {
			head, body, _, err := roundTrip(cc, fields, payload)
			if err != nil || head.Status != 200 || len(body) != len(payload) {
				b.Fatalf("%v %v %d", head, err, len(body))
			}
		}
	}
	theirClient := func(b *testing.B, addr string) {
		c := netHTTPClient()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Post("http://"+addr+"/echo", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("client=h2,server=h2", func(b *testing.B) { oursClient(b, ours(b)) })
	b.Run("client=net/http,server=net/http", func(b *testing.B) { theirClient(b, theirs(b)) })
	b.Run("client=h2,server=net/http", func(b *testing.B) { oursClient(b, theirs(b)) })
	b.Run("client=net/http,server=h2", func(b *testing.B) { theirClient(b, ours(b)) })
}

// echoPlain answers with the request body, with its length.
func echoPlain(s *Stream) {
	defer s.Close()
	if _, err := s.ReadHead(); err != nil {
		return
	}
	body, err := io.ReadAll(s)
	if err != nil {
		return
	}
	_ = s.Respond([]Field{{Name: ":status", Value: "200"}, {Name: "content-length", Value: "128"}}, body, true)
}
