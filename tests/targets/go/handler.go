// handler N: calls handle(i, "gopher") for i in 0..N, each in a new goroutine whose stack
// must grow (and so be copied by the runtime, walking every frame's return address) while
// handle is on it; prints the sum of the results and "done".
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// grow uses about 1 KiB of stack per level and returns 0.
//
//go:noinline
func grow(n int) int {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return grow(n-1) + int(pad[n%1024]) - n
}

// handle has two returns: i for even i, 100*len(name)+i for odd i.
//
//go:noinline
func handle(i int, name string) int {
	r := grow(64)
	if i%2 == 0 {
		return i + r
	}
	runtime.GC()
	return len(name)*100 + i + r
}

func main() {
	n := 10
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	sum := 0
	for i := 0; i < n; i++ {
		ch := make(chan int)
		go func(i int) { ch <- handle(i, "gopher") }(i)
		sum += <-ch
	}
	fmt.Println(sum)
	fmt.Println("done")
}
