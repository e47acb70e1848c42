package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/hub"
)

// dataOptions are the flags shared by the data subcommands.
type dataOptions struct {
	Lock  string // datasets.lock path ("" = $SNAPEVAL_LOCK or the nearest datasets.lock)
	Cache string // dataset cache ("" = $SNAPEVAL_CACHE, $XDG_CACHE_HOME/snapeval or ~/.cache/snapeval)
	Trust bool   // --trust-on-first-use
}

func (o *dataOptions) lock() (*datasets.Lock, error) {
	if o.Lock == "" {
		l, _, err := datasets.DefaultLock()
		return l, err
	}
	return datasets.LoadLock(o.Lock)
}

func (o *dataOptions) cache() string {
	if o.Cache != "" {
		return o.Cache
	}
	return datasets.CacheDir()
}

func init() {
	o := &dataOptions{}
	pf := dataCmd.PersistentFlags()
	pf.StringVar(&o.Lock, "lock", "", "datasets.lock to use (default $SNAPEVAL_LOCK, else datasets.lock in . or a parent)")
	pf.StringVar(&o.Cache, "cache-dir", "", "dataset cache (default $SNAPEVAL_CACHE, $XDG_CACHE_HOME/snapeval or ~/.cache/snapeval)")

	dataCmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the pinned datasets, their files and whether each is pinned and cached",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDataList(o, cmd.OutOrStdout())
		},
	})

	pull := &cobra.Command{
		Use:   "pull [NAME...]",
		Short: "Download datasets from the Hugging Face Hub into the cache, verified against datasets.lock",
		Long: `pull downloads every file of the named datasets (all when none is named; NAME also stands for every dataset
named NAME.PART, so "ruler" pulls ruler.squad and ruler.hotpotqa) at the locked revision,
resuming interrupted transfers and checking each file's sha256. A file whose hash the lock does not know is
refused unless --trust-on-first-use, which records the hash it saw in lock.local.json in the cache and warns.
Environment: HF_ENDPOINT (a mirror), HF_TOKEN (gated repositories; never printed).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDataPull(cmd.Context(), o, args, cmd.ErrOrStderr())
		},
	}
	pull.Flags().BoolVar(&o.Trust, "trust-on-first-use", false, "accept files whose sha256 is not pinned, recording the hash seen")
	dataCmd.AddCommand(pull)

	dataCmd.AddCommand(&cobra.Command{
		Use:   "verify [NAME...]",
		Short: "Hash the cached files and compare them with datasets.lock (exit 1 on a wrong file, or a missing file of a named dataset)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDataVerify(o, args, cmd.OutOrStdout())
		},
	})

	imp := &cobra.Command{
		Use:   "import NAME FILE",
		Short: "Copy a file obtained elsewhere into the cache as a file of dataset NAME (it must match the lock's sha256)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.lock()
			if err != nil {
				return err
			}
			dest, err := datasets.Import(l, args[0], args[1], o.cache(), o.Trust)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), dest)
			return nil
		},
	}
	imp.Flags().BoolVar(&o.Trust, "trust-on-first-use", false, "accept a file of an unpinned dataset by its name, recording its hash")
	dataCmd.AddCommand(imp)
}

func runDataList(o *dataOptions, w io.Writer) error {
	l, err := o.lock()
	if err != nil {
		return err
	}
	st, err := datasets.Verify(l, o.cache())
	if err != nil {
		return err
	}
	state := map[string]string{}
	for _, s := range st {
		state[s.Dataset+"/"+s.File] = s.State
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tREPO\tREVISION\tFILE\tROWS\tPINNED\tCACHE")
	for _, d := range l.Datasets {
		rev := d.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		for _, f := range d.Files {
			rows := "?"
			if f.Rows != nil {
				rows = fmt.Sprint(*f.Rows)
			}
			pinned := "yes"
			if !f.Pinned() {
				pinned = "NO"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Repo, rev, f.Path, rows, pinned, state[d.Name+"/"+f.Path])
		}
	}
	return tw.Flush()
}

func runDataPull(ctx context.Context, o *dataOptions, names []string, log io.Writer) error {
	l, err := o.lock()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		for _, d := range l.Datasets {
			names = append(names, d.Name)
		}
	} else {
		var expanded []string
		for _, n := range names {
			if m := l.Members(n); len(m) > 0 {
				expanded = append(expanded, m...)
			} else {
				expanded = append(expanded, n)
			}
		}
		names = expanded
	}
	if ctx == nil {
		ctx = context.Background()
	}
	client := hub.NewFromEnv()
	if isTerminal(log) {
		client.Progress = func(done, total int64) {
			if total > 0 {
				fmt.Fprintf(log, "\r%6.1f%% of %d MB", 100*float64(done)/float64(total), total>>20)
			}
		}
	}
	var failed []string
	for _, n := range names {
		err := datasets.Pull(ctx, l, n, o.cache(), datasets.PullOptions{Client: client, TrustOnFirstUse: o.Trust, Log: log})
		if client.Progress != nil {
			fmt.Fprintln(log)
		}
		if err != nil {
			fmt.Fprintln(log, "error:", err)
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return &exitError{code: exitIncomplete, err: fmt.Errorf("could not pull %v", failed)}
	}
	return nil
}

func runDataVerify(o *dataOptions, names []string, w io.Writer) error {
	l, err := o.lock()
	if err != nil {
		return err
	}
	st, err := datasets.Verify(l, o.cache(), names...)
	if err != nil {
		return err
	}
	bad := 0
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tFILE\tSTATE\tSHA256\tDETAIL")
	for _, s := range st {
		if s.State == "mismatch" || (s.State == "missing" && len(names) > 0) {
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Dataset, s.File, s.State, s.SHA256, s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return &exitError{code: exitGateFailed, err: fmt.Errorf("%d file(s) missing or not matching the lock", bad)}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
