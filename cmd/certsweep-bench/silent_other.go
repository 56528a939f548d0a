//go:build !linux

package main

import (
	"errors"
	"flag"
)

// The silent-network scenario needs Linux network namespaces (silent.go).

type silentOptions struct{}

func silentFlags(*flag.FlagSet) *silentOptions { return &silentOptions{} }

func silentRows(_, _, _ string, _ *silentOptions) ([]row, string, error) {
	return nil, "it needs Linux network namespaces", nil
}

var errNoNetns = errors.New("the silent network scenario needs Linux network namespaces")

func silent([]string) error      { return errNoNetns }
func silentInner([]string) error { return errNoNetns }
func silentLab([]string) error   { return errNoNetns }
