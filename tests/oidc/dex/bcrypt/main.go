// Command bcrypt reads passwords from standard input, one a line, and prints the bcrypt hash of each, one a line, in
// the same order: the hashes of tests/oidc/dex.sh's static users. It uses golang.org/x/crypto/bcrypt, the
// implementation Dex checks them with, at the version Dex's module graph pins. Passwords come on standard input so
// that none is ever on a command line.
package main

import (
	"bufio"
	"fmt"
	"os"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for line := 1; in.Scan(); line++ {
		hash, err := bcrypt.GenerateFromPassword(in.Bytes(), bcrypt.DefaultCost)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bcrypt: hashing the password of line %d: %v\n", line, err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "%s\n", hash)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "bcrypt: reading standard input: %v\n", err)
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "bcrypt: writing standard output: %v\n", err)
		os.Exit(1)
	}
}
