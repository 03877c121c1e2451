package proxyenv

import (
	"fmt"
	"log/slog"
	"strings"
)

// Levels beyond slog's built-in ones, used for Linkerd's "trace" and "off".
const (
	// LevelTrace is below slog.LevelDebug.
	LevelTrace = slog.LevelDebug - 4
	// LevelOff is above every level a record is logged at.
	LevelOff = slog.LevelError + 8
)

// LogSpec is a log filter in Linkerd's (tracing EnvFilter) syntax: comma-
// separated directives, each a bare level ("warn") or target=level
// ("linkerd=info", "[{headers}]=off").
type LogSpec struct {
	// Raw is the spec as given (without surrounding whitespace).
	Raw string
	// Level is the effective level for this proxy's own logs: that of the
	// last "linkerd" or "linkerd2_proxy" directive, else the last bare level,
	// else slog.LevelInfo.
	Level slog.Level
}

// String returns the spec text.
func (s LogSpec) String() string { return s.Raw }

// ParseLogSpec parses a log filter such as
// "warn,linkerd=info,hickory=error,[{headers}]=off". Levels are trace,
// debug, info, warn, error and off (case-insensitive) or their numeric
// forms 5 (trace) to 0 (off). Directives for other targets are checked and
// otherwise ignored. Blank directives are skipped.
func ParseLogSpec(s string) (LogSpec, error) {
	s = strings.TrimSpace(s)
	spec := LogSpec{Raw: s, Level: slog.LevelInfo}
	var bare, own *slog.Level
	for d := range strings.SplitSeq(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		target, levelText, hasTarget := cutLast(d, '=')
		if !hasTarget {
			levelText = d
		}
		target, levelText = strings.TrimSpace(target), strings.TrimSpace(levelText)
		lvl, ok := parseLevel(levelText)
		if !ok {
			return LogSpec{}, fmt.Errorf("invalid log level %q in directive %q", levelText, d)
		}
		switch {
		case !hasTarget:
			bare = &lvl
		case target == "":
			return LogSpec{}, fmt.Errorf("invalid log directive %q: empty target", d)
		case target == "linkerd" || target == "linkerd2_proxy":
			own = &lvl
		}
	}
	switch {
	case own != nil:
		spec.Level = *own
	case bare != nil:
		spec.Level = *bare
	}
	return spec, nil
}

func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "trace", "5":
		return LevelTrace, true
	case "debug", "4":
		return slog.LevelDebug, true
	case "info", "3":
		return slog.LevelInfo, true
	case "warn", "2":
		return slog.LevelWarn, true
	case "error", "1":
		return slog.LevelError, true
	case "off", "0":
		return LevelOff, true
	default:
		return 0, false
	}
}
