package main

import (
	"context"
	"fmt"
	"io"
)

// runOperator runs the operator commands of SPEC §7 against the admin API.
func runOperator(_ context.Context, cmd string, _ []string, _, _ io.Writer, _ func(string) string) error {
	return fmt.Errorf("unknown command %q (see wxscan help)", cmd)
}
