// Package bufpool is the proxy's one pool of copy buffers: every engine
// that copies a body or a byte stream between two connections borrows its
// buffer here, so a busy proxy keeps one set of them, not one per engine.
package bufpool

import "sync"

// Size is a copy buffer's size.
const Size = 32 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}

// Get borrows a buffer of Size bytes; give it back with Put.
func Get() *[]byte { return pool.Get().(*[]byte) }

// Put gives back a buffer from Get.
func Put(b *[]byte) { pool.Put(b) }
