package ledger

import (
	"errors"
	"fmt"
	"sort"
)

// Entry is one charge in the usage ledger.
type Entry struct {
	Model        string
	TaskKind     string
	InputTokens  int64
	OutputTokens int64
}

var ErrEmpty = errors.New("ledger: no entries")

// Median returns the median output/input ratio of the entries of one model.
func Median(entries []Entry, model string) (float64, error) {
	var ratios []float64
	for _, e := range entries {
		if e.Model != model || e.InputTokens <= 0 {
			continue
		}
		ratios = append(ratios, float64(e.OutputTokens)/float64(e.InputTokens))
	}
	if len(ratios) == 0 {
		return 0, fmt.Errorf("%w for model %q", ErrEmpty, model)
	}
	sort.Float64s(ratios)
	mid := len(ratios) / 2
	if len(ratios)%2 == 0 {
		return (ratios[mid-1] + ratios[mid]) / 2, nil
	}
	return ratios[mid], nil
}
