package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kfn-dev/kfn/apiserver"
	"github.com/kfn-dev/kfn/internal/kube"
)

// runAPIServer is `kfn apiserver`: the REST facade on its own.
func runAPIServer(args []string) int {
	o := apiserver.DefaultOptions()
	var addrs apiserver.Addresses
	fs := flag.NewFlagSet("kfn apiserver", flag.ContinueOnError)
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the Appwrite REST API is served on")
	fs.StringVar(&addrs.Metrics, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&addrs.Probe, "health-probe-bind-address", ":8081", "address of the health and readiness probes")
	fs.StringVar(&addrs.Pprof, "pprof-bind-address", "", "serve Go's pprof profiles (/debug/pprof/) on this address, for memory and CPU investigations (empty: off)")
	apiserver.BindFlags(fs, "", &o)
	var archived archiveOptions
	bindArchiveConnectionFlags(fs, &archived)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	noteExplicitArchiveFlags(fs, &archived)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	limitMemory()
	ctx := ctrl.SetupSignalHandler()
	store, err := openArchive(ctx, archived)
	if err == nil && store != nil {
		defer store.Close()
		o.Archive = store
	}
	if err == nil {
		err = apiserver.Run(ctx, o, addrs)
	}
	if err != nil {
		ctrl.Log.Error(err, "apiserver stopped")
		return 1
	}
	return 0
}

// runJWT is `kfn jwt`: mint a user JWT the facade accepts, signed with a
// key from a file or from a project's kfn-jwt Secret.
func runJWT(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfn jwt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key-file", "", "file holding the signing key")
	project := fs.String("project", "", "read the key from the "+apiserver.JWTSecretName+" Secret of this project namespace (uses the kubeconfig)")
	userID := fs.String("user", "", "user ID (the userId claim)")
	sessionID := fs.String("session", "", "session ID (the sessionId claim); random if empty")
	ttl := fs.Duration("ttl", apiserver.JWTMaxAge, "lifetime of the token, at most 15m")
	m := membershipFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *userID == "" || (*keyFile == "") == (*project == "") {
		fmt.Fprintln(stderr, "usage: kfn jwt --user ID (--key-file FILE | --project NAMESPACE) [--session ID] [--ttl 15m] "+
			"[--team ID[=ROLE,...]]... [--membership ID]... [--label NAME]... [--verified | --unverified]")
		return 2
	}
	if !apiserver.ValidUID(*userID) {
		fmt.Fprintf(stderr, "kfn jwt: %q is not a valid user ID (up to 36 of a-z, A-Z, 0-9, '.', '-', '_')\n", *userID)
		return 2
	}
	var key []byte
	var err error
	if *keyFile != "" {
		key, err = os.ReadFile(*keyFile)
	} else {
		key, err = readProjectJWTKey(*project)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kfn jwt:", err)
		return 1
	}
	if *sessionID == "" {
		*sessionID = apiserver.NewID()
	}
	membership, err := m.membership()
	if err != nil {
		fmt.Fprintln(stderr, "kfn jwt:", err)
		return 2
	}
	token, err := apiserver.MintUserJWT(key, *userID, *sessionID, membership, time.Now(), *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "kfn jwt:", err)
		return 1
	}
	fmt.Fprintln(stdout, token)
	return 0
}

// jwtMembership is what `kfn jwt` flags say of the user's membership, the
// claims that give team:, member:, label: and verified roles.
type jwtMembership struct {
	teams               map[string][]string
	memberships, labels []string
	verified            bool
	unverified          bool
}

func membershipFlags(fs *flag.FlagSet) *jwtMembership {
	m := &jwtMembership{teams: map[string][]string{}}
	fs.Func("team", "a team the user is a confirmed member of, with the user's roles in it: ID or ID=ROLE,ROLE (repeatable)", func(v string) error {
		id, roles, _ := strings.Cut(v, "=")
		m.teams[id] = append(m.teams[id], strings.FieldsFunc(roles, func(r rune) bool { return r == ',' })...)
		return nil
	})
	fs.Func("membership", "the ID of one of the user's confirmed memberships (repeatable)", func(v string) error {
		m.memberships = append(m.memberships, v)
		return nil
	})
	fs.Func("label", "one of the user's labels (repeatable)", func(v string) error {
		m.labels = append(m.labels, v)
		return nil
	})
	fs.BoolVar(&m.verified, "verified", false, "the user's email or phone is verified (users/verified roles match)")
	fs.BoolVar(&m.unverified, "unverified", false, "the user's email and phone are not verified (users/unverified roles match)")
	return m
}

// membership is the token's claims (MintUserJWT checks their values).
func (m *jwtMembership) membership() (apiserver.Membership, error) {
	out := apiserver.Membership{Memberships: m.memberships, Labels: m.labels}
	if len(m.teams) > 0 {
		out.Teams = m.teams
	}
	switch {
	case m.verified && m.unverified:
		return out, errors.New("--verified and --unverified exclude each other")
	case m.verified || m.unverified:
		out.Verified = &m.verified
	}
	return out, nil
}

// readProjectJWTKey reads a project's signing key through the kubeconfig.
func readProjectJWTKey(namespace string) ([]byte, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, err
	}
	return apiserver.ReadJWTKey(context.Background(), c, namespace)
}
