package detect

import (
	"bytes"
	"testing"
)

func FuzzClassify(f *testing.F) {
	seeds := [][]byte{
		nil,
		[]byte("GET / HTTP/1.1\r\n"),
		[]byte("POST /x HTTP/1.0\r\nHost: a\r\n\r\n"),
		[]byte("PRI * HTTP/1.1\r\n"),
		h2Preface,
		h2Preface[:7],
		[]byte("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"),
		synthHello(sniExt("seed.example")),
		fragmentHello(f, synthHello(sniExt("frag.example")), 7),
		synthHello(append(sniExt("a.example"), 0, 10, 0, 0)),
		[]byte{0x16, 3, 3, 0x40, 0x00, 1, 0xff, 0xff, 0xff},
		[]byte("SSH-2.0-OpenSSH_9.6\r\n"),
		{0x00, 0x01, 0x02},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	suffixes := [][]byte{
		{0x00},
		[]byte("GET / HTTP/1.1\r\n"),
		h2Preface,
		{0x16, 3, 1, 0, 4, 1, 0, 0, 0},
		bytes.Repeat([]byte{0xff}, 64),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, done := Classify(b)
		if r.TimedOut {
			t.Fatalf("Classify reported a timeout")
		}
		if r.SNI != "" && (r.Protocol != TLS || !validHostName([]byte(r.SNI))) {
			t.Fatalf("unexpected SNI %q for %v", r.SNI, r.Protocol)
		}
		if !done && r != (Result{}) {
			t.Fatalf("undecided result is not zero: %+v", r)
		}
		if len(b) >= MaxPeek && !done {
			t.Fatalf("undecided after %d bytes", len(b))
		}
		if done {
			for _, s := range append(suffixes, b) {
				longer := append(bytes.Clone(b), s...)
				if r2, done2 := Classify(longer); !done2 || r2 != r {
					t.Fatalf("Classify(b) = %+v but with %q appended = %+v, %v", r, truncate(s), r2, done2)
				}
			}
		}
		// Feeding prefixes to one incremental classifier agrees with
		// Classify, and decisions never change once made.
		if len(b) <= 4096 {
			checkConsistent(t, b)
		}
	})
}
