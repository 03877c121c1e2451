package metrics

import (
	"math"
	"strconv"
)

func floatBits(f float64) uint64 { return math.Float64bits(f) }
func floatFrom(b uint64) float64 { return math.Float64frombits(b) }
func itoa(i int) string          { return strconv.Itoa(i) }
