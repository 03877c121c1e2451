package healthcheck

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Output formats of `linkerd check -o`.
const (
	TableOutput = "table"
	JSONOutput  = "json"
	ShortOutput = "short"
)

// Outputs lists the output formats, for flag help.
var Outputs = []string{TableOutput, JSONOutput, ShortOutput}

// Marks printed before a check's description.
const (
	okMark   = "√"
	warnMark = "‼"
	errMark  = "×"
)

// Title heads the table output.
const Title = "Linkerd core checks"

// Renderer prints results as they arrive.
type Renderer interface {
	// Observe receives each result; it is an Observer.
	Observe(Result)
	// Finish prints what follows the last result; success is Run's result.
	Finish(success bool) error
}

// NewRenderer returns the renderer for format (TableOutput, JSONOutput or
// ShortOutput), writing to w.
func NewRenderer(format string, w io.Writer) (Renderer, error) {
	switch format {
	case TableOutput:
		return &tableRenderer{w: w}, nil
	case ShortOutput:
		return &tableRenderer{w: w, short: true}, nil
	case JSONOutput:
		return &jsonRenderer{w: w}, nil
	}
	return nil, fmt.Errorf("invalid output format %q: use one of %s", format, strings.Join(Outputs, ", "))
}

// tableRenderer prints Linkerd's check table: a title, then each category
// as a heading underlined with dashes and its checks, one per line,
// marked √, ‼ (warning) or ×, with the problem and the hint URL indented
// below, and a final status line. Short output leaves out the successful
// checks and the categories with nothing else.
type tableRenderer struct {
	w        io.Writer
	short    bool
	titled   bool
	category string
	err      error
}

func (t *tableRenderer) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *tableRenderer) Observe(r Result) {
	if r.Retrying || (t.short && r.Status == StatusSuccess) {
		return
	}
	if !t.titled {
		t.printf("%s\n%s\n\n", Title, strings.Repeat("=", len(Title)))
		t.titled = true
	}
	if r.Category != t.category {
		if t.category != "" {
			t.printf("\n")
		}
		t.printf("%s\n%s\n", r.Category, strings.Repeat("-", len(r.Category)))
		t.category = r.Category
	}
	mark := okMark
	switch r.Status {
	case StatusWarning:
		mark = warnMark
	case StatusError:
		mark = errMark
	}
	t.printf("%s %s\n", mark, r.Description)
	indent := func(text string) {
		for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
			t.printf("    %s\n", line)
		}
	}
	if r.Note != "" {
		indent(r.Note)
	}
	if r.Err != nil {
		indent(r.Err.Error())
		if r.Hint != "" {
			t.printf("    see %s for hints\n", r.Hint)
		}
	}
}

func (t *tableRenderer) Finish(success bool) error {
	if t.titled {
		t.printf("\n")
	}
	mark := okMark
	if !success {
		mark = errMark
	}
	t.printf("Status check results are %s\n", mark)
	return t.err
}

// JSONResult is the JSON output (-o json).
type JSONResult struct {
	Success    bool           `json:"success"`
	Categories []JSONCategory `json:"categories"`
}

// JSONCategory is a category of the JSON output.
type JSONCategory struct {
	Name   string      `json:"categoryName"`
	Checks []JSONCheck `json:"checks"`
}

// JSONCheck is a check of the JSON output.
type JSONCheck struct {
	Description string `json:"description"`
	// Hint is the URL explaining a failed check.
	Hint string `json:"hint,omitempty"`
	// Error is why the check failed or warned.
	Error string `json:"error,omitempty"`
	// Note is a remark on a successful check.
	Note string `json:"note,omitempty"`
	// Result is "success", "warning" or "error".
	Result Status `json:"result"`
}

type jsonRenderer struct {
	w   io.Writer
	out JSONResult
}

func (j *jsonRenderer) Observe(r Result) {
	if r.Retrying {
		return
	}
	n := len(j.out.Categories)
	if n == 0 || j.out.Categories[n-1].Name != r.Category {
		j.out.Categories = append(j.out.Categories, JSONCategory{Name: r.Category, Checks: []JSONCheck{}})
		n++
	}
	c := JSONCheck{Description: r.Description, Note: r.Note, Result: r.Status}
	if r.Err != nil {
		c.Error = r.Err.Error()
		c.Hint = r.Hint
	}
	j.out.Categories[n-1].Checks = append(j.out.Categories[n-1].Checks, c)
}

func (j *jsonRenderer) Finish(success bool) error {
	j.out.Success = success
	if j.out.Categories == nil {
		j.out.Categories = []JSONCategory{}
	}
	enc := json.NewEncoder(j.w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j.out); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
