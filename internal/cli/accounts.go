package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usersvc/usersvc/internal/app"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/mtls"
	"github.com/usersvc/usersvc/internal/user"
)

// serviceAccountFlags are the flags of `usersvc admin service-account …`.
// Like `admin create`, these talk to the database, not to the RPC port:
// whoever can reach the database administers the service anyway.
type serviceAccountFlags struct {
	name, scopes, id string
}

func (f *serviceAccountFlags) define(cmd string) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		switch cmd {
		case "admin service-account create":
			fs.StringVar(&f.name, "name", "", "name of the calling service, e.g. orders (required)")
			fs.StringVar(&f.scopes, "scopes", "", "space- or comma-separated scopes: users:read, users:write, users:admin (required)")
		case "admin service-account revoke":
			fs.StringVar(&f.id, "id", "", "client id of the account to revoke (required)")
		}
	}
}

func (f *serviceAccountFlags) run(ctx context.Context, cmd string, cfg *config.Config, io IO) error {
	var scopes []user.Scope
	switch cmd {
	case "admin service-account create":
		if f.name == "" || f.scopes == "" {
			return fmt.Errorf("%w: %s needs --name and --scopes", errUsage, cmd)
		}
		var err error
		if scopes, err = user.ParseScopes(f.scopes); err != nil {
			return fmt.Errorf("%w: --scopes: %v", errUsage, user.AsError(err).Fields["scopes"])
		}
	case "admin service-account revoke":
		if f.id == "" {
			return fmt.Errorf("%w: %s needs --id", errUsage, cmd)
		}
	}
	core, err := app.NewCore(ctx, cfg, app.NewLogger(cfg, io.Stderr, app.ServiceName("cli")), app.ModeTool)
	if err != nil {
		return err
	}
	defer core.Close()
	svc := core.Service
	switch cmd {
	case "admin service-account create":
		a, secret, err := svc.CreateServiceAccount(ctx, user.SystemActor, f.name, scopes)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "client_id=%s\nclient_secret=%s\n", a.ID, secret)
		fmt.Fprintln(io.Stderr, "The secret is shown only now; it is stored hashed.")
		return nil
	case "admin service-account revoke":
		return svc.RevokeServiceAccount(ctx, user.SystemActor, f.id)
	}
	as, err := svc.ListServiceAccounts(ctx, user.SystemActor)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(io.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLIENT ID\tNAME\tSCOPES\tCREATED\tREVOKED")
	for _, a := range as {
		revoked := "-"
		if a.RevokedAt != nil {
			revoked = a.RevokedAt.Format(time.RFC3339)
		}
		sc := make([]string, len(a.Scopes))
		for i, s := range a.Scopes {
			sc[i] = string(s)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, strings.Join(sc, " "), a.CreatedAt.Format(time.RFC3339), revoked)
	}
	return w.Flush()
}

// certsFlags are the flags of `usersvc certs generate`.
type certsFlags struct {
	dir, hosts string
	validity   time.Duration
}

func (f *certsFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", "certs", "directory to write ca.pem, server.pem, client.pem and their keys into")
	fs.StringVar(&f.hosts, "hosts", "localhost,127.0.0.1", "extra names and addresses of the server certificate, besides "+mtls.ServerName)
	fs.DurationVar(&f.validity, "validity", 365*24*time.Hour, "lifetime of the certificates")
}

func (f *certsFlags) run(io IO) error {
	if err := mtls.Generate(f.dir, strings.Split(f.hosts, ","), f.validity); err != nil {
		return err
	}
	fmt.Fprintf(io.Stdout, "wrote a CA and gRPC server and client certificates to %s\n", f.dir)
	fmt.Fprintln(io.Stdout, "service: USERSVC_GRPC_TLS_CERT=server.pem USERSVC_GRPC_TLS_KEY=server-key.pem USERSVC_GRPC_TLS_CA=ca.pem")
	fmt.Fprintln(io.Stdout, "api:     USERSVC_GRPC_TLS_CERT=client.pem USERSVC_GRPC_TLS_KEY=client-key.pem USERSVC_GRPC_TLS_CA=ca.pem")
	return nil
}
