package meshtls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The transport header, sent by the client right after a handshake that
// negotiated ALPNTransport: a magic, the target port and an optional name
// (the logical destination), so the inbound proxy knows where opaque bytes go.
//
//	"L5DT" | version (1) | port (uint16) | name length (uint16) | name
var headerMagic = [4]byte{'L', '5', 'D', 'T'}

const headerVersion = 1

// MaxHeaderName bounds the name in a transport header.
const MaxHeaderName = 1024

// Header is the transport header.
type Header struct {
	Port uint16
	Name string
}

// WriteHeader writes h to w.
func WriteHeader(w io.Writer, h Header) error {
	if len(h.Name) > MaxHeaderName {
		return fmt.Errorf("transport header name of %d bytes is too long", len(h.Name))
	}
	b := make([]byte, 0, 9+len(h.Name))
	b = append(b, headerMagic[:]...)
	b = append(b, headerVersion)
	b = binary.BigEndian.AppendUint16(b, h.Port)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Name)))
	b = append(b, h.Name...)
	_, err := w.Write(b)
	return err
}

// ErrBadHeader means the transport header is malformed.
var ErrBadHeader = errors.New("malformed transport header")

// ReadHeader reads a transport header from r.
func ReadHeader(r io.Reader) (Header, error) {
	var fixed [9]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Header{}, fmt.Errorf("read transport header: %w", err)
	}
	if [4]byte(fixed[:4]) != headerMagic || fixed[4] != headerVersion {
		return Header{}, ErrBadHeader
	}
	h := Header{Port: binary.BigEndian.Uint16(fixed[5:7])}
	n := binary.BigEndian.Uint16(fixed[7:9])
	if h.Port == 0 || n > MaxHeaderName {
		return Header{}, ErrBadHeader
	}
	if n > 0 {
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return Header{}, fmt.Errorf("read transport header: %w", err)
		}
		h.Name = string(name)
	}
	return h, nil
}
