// Command peers serves caas-broker's catalog the way the benchmark's baselines do, so that `cargo bench --bench
// broker` measures caas-broker against them in the same run:
//
//	peers -mode brokerapi -catalog FILE -listen ADDR   code.cloudfoundry.org/brokerapi/v13, the Go library most
//	                                                   Cloud Foundry brokers are built on, serving the same services
//	                                                   with its own Basic auth, version check and logging middleware
//	peers -mode static -catalog FILE -listen ADDR      a bare net/http handler writing the same bytes: the floor
//
// The Basic credentials of brokerapi mode come from the environment (PEERS_USERNAME, PEERS_PASSWORD), never from the
// command line. It prints "listening on ADDR" once it accepts connections.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"code.cloudfoundry.org/brokerapi/v13"
	"code.cloudfoundry.org/brokerapi/v13/domain"
)

func main() {
	mode := flag.String("mode", "", "brokerapi or static")
	catalogFile := flag.String("catalog", "", "the catalog as caas-broker serves it (JSON)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	body, err := os.ReadFile(*catalogFile)
	if err != nil {
		fail("reading the catalog: %v", err)
	}
	var handler http.Handler
	switch *mode {
	case "static":
		handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		})
	case "brokerapi":
		var catalog struct {
			Services []domain.Service `json:"services"`
		}
		if err := json.Unmarshal(body, &catalog); err != nil {
			fail("the catalog is not what brokerapi reads: %v", err)
		}
		credentials := brokerapi.BrokerCredentials{Username: os.Getenv("PEERS_USERNAME"), Password: os.Getenv("PEERS_PASSWORD")}
		if credentials.Username == "" || credentials.Password == "" {
			fail("PEERS_USERNAME and PEERS_PASSWORD are required in brokerapi mode")
		}
		// brokerapi logs each request at info level, as a deployed broker would; to stderr, which the bench drains.
		logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		handler = brokerapi.New(catalogOnly{catalog.Services}, logger, credentials)
	default:
		fail("-mode must be brokerapi or static, not %q", *mode)
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listening on %s: %v", *listen, err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	if err := http.Serve(listener, handler); err != nil {
		fail("serving: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
	os.Exit(1)
}

// catalogOnly is a broker that serves a catalog and refuses every operation: the benchmark reads the catalog only.
type catalogOnly struct{ services []domain.Service }

var errCatalogOnly = errors.New("this benchmark peer serves the catalog only")

func (b catalogOnly) Services(context.Context) ([]domain.Service, error) { return b.services, nil }

func (catalogOnly) Provision(context.Context, string, domain.ProvisionDetails, bool) (domain.ProvisionedServiceSpec, error) {
	return domain.ProvisionedServiceSpec{}, errCatalogOnly
}

func (catalogOnly) Deprovision(context.Context, string, domain.DeprovisionDetails, bool) (domain.DeprovisionServiceSpec, error) {
	return domain.DeprovisionServiceSpec{}, errCatalogOnly
}

func (catalogOnly) GetInstance(context.Context, string, domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	return domain.GetInstanceDetailsSpec{}, errCatalogOnly
}

func (catalogOnly) Update(context.Context, string, domain.UpdateDetails, bool) (domain.UpdateServiceSpec, error) {
	return domain.UpdateServiceSpec{}, errCatalogOnly
}

func (catalogOnly) LastOperation(context.Context, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{}, errCatalogOnly
}

func (catalogOnly) Bind(context.Context, string, string, domain.BindDetails, bool) (domain.Binding, error) {
	return domain.Binding{}, errCatalogOnly
}

func (catalogOnly) Unbind(context.Context, string, string, domain.UnbindDetails, bool) (domain.UnbindSpec, error) {
	return domain.UnbindSpec{}, errCatalogOnly
}

func (catalogOnly) GetBinding(context.Context, string, string, domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	return domain.GetBindingSpec{}, errCatalogOnly
}

func (catalogOnly) LastBindingOperation(context.Context, string, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{}, errCatalogOnly
}
