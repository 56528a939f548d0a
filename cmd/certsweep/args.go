package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs moves every flag of a command line before its positional
// arguments, so that `certsweep track add 3f2a9c --owner web-team` means
// what it says. urfave/cli v2 stops reading flags at the first positional
// argument and would take "--owner" as a second fingerprint. Subcommand
// names are followed; a flag's value travels with it; "--" ends flags as
// usual; an unknown flag is moved too, so urfave/cli reports it by name.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	var pending, positional []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			pending = append(pending, a)
			if takesValue(flags, a) && i+1 < len(args) {
				i++
				pending = append(pending, args[i])
			}
		case len(positional) == 0 && findCommand(cmds, a) != nil:
			c := findCommand(cmds, a)
			out = append(append(out, pending...), a)
			pending, cmds, flags = nil, c.Subcommands, c.Flags
		default:
			positional = append(positional, a)
		}
	}
	return append(append(out, pending...), positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the flag token a ("--name", "-n") names a
// flag that reads the next argument as its value.
func takesValue(flags []cli.Flag, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false // --name=value carries its own
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*cli.BoolFlag); isBool {
				return false
			}
			return true
		}
	}
	return false
}
