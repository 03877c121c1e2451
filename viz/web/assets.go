package web

import (
	"embed"
	"fmt"
	"io/fs"
)

// dist is the dashboard built from app/ (`make web`: npm ci, npm run
// build). It is committed, so that `go build ./...` works without Node.js;
// TestAssetsUpToDate checks it was built from the current sources.
//
//go:embed all:dist
var dist embed.FS

// Assets returns the embedded dashboard build.
func Assets() (fs.FS, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("web: embedded assets: %w", err)
	}
	return sub, nil
}
