//go:build !linux

package memtrim

// Release does nothing where madvise(MADV_PAGEOUT) does not exist.
func Release() (int, error) { return 0, nil }
