package images

import (
	"debug/elf"
	"fmt"
	"os"
)

// hostBinaryFiles returns the image entries for a binary of this machine
// installed at path: the binary and, when it is dynamically linked, the
// shared libraries and loader it needs, at the paths the host has them.
func hostBinaryFiles(binary, path string) ([]entry, error) {
	fi, err := os.Stat(binary)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s is not an executable file", binary)
	}
	files := []entry{{path: path, mode: 0o755, src: binary}}
	dynamic, err := isDynamic(binary)
	if err != nil {
		return nil, err
	}
	if !dynamic {
		return files, nil
	}
	libs, err := sharedLibraries([]string{binary})
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		files = append(files, entry{path: l, mode: 0o755, src: l})
	}
	return files, nil
}

// isDynamic reports whether the ELF file asks for a program interpreter
// (the dynamic loader): ldd fails on static binaries.
func isDynamic(binary string) (bool, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return false, fmt.Errorf("%s: %w", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}
