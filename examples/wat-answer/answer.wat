;; A hand-written WASI module that answers a CGI request with "42".
;; wat2wasm answer.wat -o answer.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; the response: CGI headers, a blank line, the body
  (data (i32.const 64) "Content-Type: text/plain\n\n42\n")
  (func (export "_start")
    ;; iovec at 0: pointer 64, length 29
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 29))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
