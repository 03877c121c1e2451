package proxyenv

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidDuration is the error ParseDuration returns.
var ErrInvalidDuration = errors.New("invalid duration")

// ParseDuration parses a duration in Linkerd's form, a decimal integer with
// a unit of ms, s, m, h or d ("100ms", "10s", "365d"; a bare "0" is zero),
// or any non-negative duration time.ParseDuration accepts ("1m30s",
// "1.5s"). The error is ErrInvalidDuration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		var unit time.Duration
		switch s[i:] {
		case "":
			if strings.Trim(s, "0") == "" {
				return 0, nil
			}
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		}
		if unit != 0 {
			n, err := strconv.ParseInt(s[:i], 10, 64)
			if err != nil || n > int64(maxDuration/unit) {
				return 0, ErrInvalidDuration
			}
			return time.Duration(n) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, ErrInvalidDuration
	}
	return d, nil
}

const maxDuration = time.Duration(1<<63 - 1)
