// cgo_handler N: calls handle(i) for i in 0..N, each calling C's twice(); prints the sum of
// the results. Built with cgo, so an external linker puts C start-up code before Go's code
// in .text: a stripped build's .gopclntab offsets count from runtime.text, not from .text.
package main

/*
int twice(int x) { return 2 * x; }
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

//go:noinline
func handle(i int) int { return int(C.twice(C.int(i))) + 1 }

func main() {
	n := 7
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += handle(i)
	}
	fmt.Println(sum)
}
