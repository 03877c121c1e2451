package h2

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzConn is a connection whose peer sends in and reads nothing back.
type fuzzConn struct {
	r *bytes.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fuzzConn) CloseWrite() error                { return nil }

// frames renders frames written by build, for seeds.
func frames(build func(fr *http2.Framer, enc func(...string) []byte)) []byte {
	var out, hbuf bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	fr.AllowIllegalWrites = true
	henc := hpack.NewEncoder(&hbuf)
	enc := func(kv ...string) []byte {
		hbuf.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			_ = henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return bytes.Clone(hbuf.Bytes())
	}
	build(fr, enc)
	return out.Bytes()
}

var fuzzRequest = []string{":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/"}

func frameSeeds() [][]byte {
	return [][]byte{
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(fuzzRequest...), EndHeaders: true})
			fr.WriteData(1, false, []byte("hello"))
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc("x-trailer", "1"), EndHeaders: true, EndStream: true})
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			b := enc(append(fuzzRequest, "content-length", "3")...)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:4]})
			fr.WriteContinuation(3, true, b[4:])
			fr.WriteData(3, true, []byte("abc"))
			fr.WritePing(false, [8]byte{1})
			fr.WriteWindowUpdate(0, 1000)
			fr.WriteWindowUpdate(3, 1000)
			fr.WriteRSTStream(3, http2.ErrCodeCancel)
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: enc(fuzzRequest...), EndHeaders: true, EndStream: true})
			fr.WritePriority(5, http2.PriorityParam{StreamDep: 5})
			fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteData(0, true, []byte("x"))
			fr.WriteRawFrame(0xee, 0xff, 7, []byte("junk"))
		}),
	}
}

// FuzzServeConn feeds arbitrary frames, after a valid preface and
// SETTINGS, to the server. It must not panic or hang, whatever they are.
func FuzzServeConn(f *testing.F) {
	for _, seed := range frameSeeds() {
		f.Add(seed)
	}
	var start bytes.Buffer
	start.WriteString(http2.ClientPreface)
	_ = http2.NewFramer(&start, nil).WriteSettings()
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &fuzzConn{r: bytes.NewReader(append(bytes.Clone(start.Bytes()), in...))}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = ServeConn(conn, Options{MaxHeaderListSize: 4096}, func(s *Stream) {
				defer s.Close()
				if _, err := s.ReadHead(); err != nil {
					return
				}
				body, _ := io.ReadAll(s)
				_ = s.Respond([]Field{{Name: ":status", Value: "200"}}, body, true)
			}, nil)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn did not return on %x", in)
		}
	})
}

// FuzzClientConn feeds arbitrary frames, after SETTINGS, to a client with
// one request open. It must not panic or hang.
func FuzzClientConn(f *testing.F) {
	f.Add(frames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(":status", "103"), EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(":status", "200", "grpc-status", "0"), EndHeaders: true})
		fr.WriteData(1, false, []byte("body"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc("grpc-status", "0"), EndHeaders: true, EndStream: true})
	}))
	for _, seed := range frameSeeds() {
		f.Add(seed)
	}
	var start bytes.Buffer
	_ = http2.NewFramer(&start, nil).WriteSettings()
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &fuzzConn{r: bytes.NewReader(append(bytes.Clone(start.Bytes()), in...))}
		cc, err := NewClientConn(conn, Options{MaxHeaderListSize: 4096}, nil)
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if !cc.Reserve() {
				return
			}
			s, err := cc.Open(reqFields("GET", "/"), nil, true)
			if err != nil {
				return
			}
			defer s.Close()
			for {
				h, err := s.ReadHead()
				if err != nil || h.Status >= 200 {
					break
				}
			}
			_, _ = io.ReadAll(s)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the stream did not end on %x", in)
		}
		cc.Close()
	})
}
