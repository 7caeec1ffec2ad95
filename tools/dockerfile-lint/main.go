// dockerfile-lint runs BuildKit's own Dockerfile checks (the rule set of `docker build --check`:
// casing, stage names, JSON-form CMD/ENTRYPOINT, undefined variables and ARGs, secrets in
// ARG/ENV, relative WORKDIR, legacy ENV syntax, …) without a Docker engine or a network: base
// images are never resolved. Every warning is an error. With -ast it also prints the parsed
// instructions as JSON, so the project's policy tests read the Dockerfile the way BuildKit does.
//
// Usage:
//
//	dockerfile-lint [-build-arg NAME=VALUE]... [-context DIR] [-ast] Dockerfile
//
// With -context it also does what BuildKit's CopyIgnoredFile rule needs a live build for: every
// COPY/ADD source taken from the build context must exist there and not be excluded by the
// context's .dockerignore (read with Docker's own pattern matcher).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

type buildArgs map[string]string

func (b buildArgs) String() string { return fmt.Sprint(map[string]string(b)) }
func (b buildArgs) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	b[k] = val
	return nil
}

// offlineResolver answers every base image with an empty Linux config: the rules that look at
// the base image (platform, inherited ENV) then run without pulling anything.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	return ref, digest.FromBytes(cfg), cfg, nil
}

type instruction struct {
	Line        int      `json:"line"`
	Instruction string   `json:"instruction"`
	Flags       []string `json:"flags"`
	Args        []string `json:"args"`
	// JSON is true for the exec form (CMD ["node", …]), false for the shell form.
	JSON     bool   `json:"json"`
	Original string `json:"original"`
}

func main() {
	args := buildArgs{}
	flag.Var(args, "build-arg", "NAME=VALUE, as for docker build (repeatable)")
	printAST := flag.Bool("ast", false, "print the parsed instructions as JSON on stdout")
	contextDir := flag.String("context", "", "build context whose .dockerignore COPY/ADD sources must pass")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint [-build-arg NAME=VALUE]... [-context DIR] [-ast] Dockerfile")
		os.Exit(2)
	}
	file := flag.Arg(0)
	dt, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	// The lint result names its source by an LLB definition; an empty one is enough offline.
	sourceMap := llb.NewSourceMap(nil, file, "Dockerfile", dt)
	sourceMap.Definition = &llb.Definition{}
	problems := 0
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{BuildArgs: args},
		SourceMap:    sourceMap,
		MetaResolver: offlineResolver{},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		os.Exit(1)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Fprintf(os.Stderr, "%s:%d: %s: %s (%s)\n", file, line, w.RuleName, w.Detail, w.URL)
		problems++
	}
	if res.Error != nil {
		line := 0
		if len(res.Error.Location.Ranges) > 0 {
			line = int(res.Error.Location.Ranges[0].Start.Line)
		}
		fmt.Fprintf(os.Stderr, "%s:%d: %s\n", file, line, res.Error.Message)
		problems++
	}

	parsed, err := parser.Parse(strings.NewReader(string(dt)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		os.Exit(1)
	}
	for _, w := range parsed.Warnings {
		fmt.Fprintf(os.Stderr, "%s:%d: %s\n", file, w.Location.Start.Line, w.Short)
		problems++
	}
	if *contextDir != "" {
		problems += checkContext(file, parsed, *contextDir)
	}
	if problems > 0 {
		fmt.Fprintf(os.Stderr, "dockerfile-lint: %d problem(s) in %s\n", problems, file)
		os.Exit(1)
	}
	if *printAST {
		var out []instruction
		for _, n := range parsed.AST.Children {
			in := instruction{Line: n.StartLine, Instruction: strings.ToUpper(n.Value), Flags: n.Flags, Original: n.Original, Args: []string{}, JSON: n.Attributes["json"]}
			if in.Flags == nil {
				in.Flags = []string{}
			}
			for a := n.Next; a != nil; a = a.Next {
				in.Args = append(in.Args, a.Value)
			}
			out = append(out, in)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	}
}

// checkContext reports COPY/ADD sources (from the build context, not --from a stage) that are
// missing from the context or excluded by its .dockerignore.
func checkContext(file string, parsed *parser.Result, dir string) int {
	var patterns []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s/.dockerignore: %v\n", dir, err)
			return 1
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s/.dockerignore: %v\n", dir, err)
		return 1
	}
	stages, _, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		return 1
	}
	problems := 0
	for _, st := range stages {
		for _, cmd := range st.Commands {
			var sources []string
			var line int
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					continue
				}
				sources, line = c.SourcePaths, c.Location()[0].Start.Line
			case *instructions.AddCommand:
				sources, line = c.SourcePaths, c.Location()[0].Start.Line
			default:
				continue
			}
			for _, src := range sources {
				if strings.Contains(src, "$") || strings.Contains(src, "://") {
					continue // expanded at build time / a URL, not a context path
				}
				rel := filepath.Clean(strings.TrimPrefix(src, "/"))
				matches, _ := filepath.Glob(filepath.Join(dir, rel))
				if len(matches) == 0 {
					fmt.Fprintf(os.Stderr, "%s:%d: COPY source %q is not in the build context %s\n", file, line, src, dir)
					problems++
					continue
				}
				for _, m := range matches {
					r, _ := filepath.Rel(dir, m)
					if ignored, _ := pm.MatchesOrParentMatches(filepath.ToSlash(r)); ignored {
						fmt.Fprintf(os.Stderr, "%s:%d: COPY source %q is excluded by %s/.dockerignore\n", file, line, r, dir)
						problems++
					}
				}
			}
		}
	}
	return problems
}
