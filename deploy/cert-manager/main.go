// The real cert-manager controllers, built from the github.com/cert-manager/cert-manager module.
//
// The module proxy serves cert-manager's root module but not its nested cmd/controller module (404 for
// every version), so this is a small main of our own around the root module's public controller
// packages: the Certificate lifecycle (trigger, key manager, request manager, issuing, readiness,
// revision manager), the CertificateRequest approver and CA signer, and the ClusterIssuer controller.
// No ACME, no webhook, no leader election: enough for a CA ClusterIssuer on a test control plane.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

var controllers = []string{
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
	"certificates-revision-manager",
	"certificaterequests-approver",
	"certificaterequests-issuer-ca",
	"clusterissuers",
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to manage")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets that ClusterIssuers refer to")
	ownerRef := flag.Bool("enable-certificate-owner-ref", true,
		"make each Certificate own its Secret, so deleting the Certificate deletes the Secret")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, *kubeconfig, *clusterResourceNamespace, *ownerRef); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager:", err)
		os.Exit(1)
	}
}

func run(parent context.Context, kubeconfig, clusterResourceNamespace string, ownerRef bool) error {
	// One failed control loop stops the others: a half-running cert-manager would mislead a test.
	ctx, stop := context.WithCancel(parent)
	defer stop()
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: clusterResourceNamespace},
		CertificateOptions: controllerpkg.CertificateOptions{
			EnableOwnerRef:                           ownerRef,
			CertificateRequestMinimumBackoffDuration: time.Minute,
			CertificateRequestMaximumBackoffDuration: 10 * time.Minute,
		},
	})
	if err != nil {
		return err
	}
	known := controllerpkg.Known()
	var loops []controllerpkg.Interface
	for _, name := range controllers {
		constructor, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %s is not registered by this cert-manager version", name)
		}
		loop, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		loops = append(loops, loop)
	}
	// The informer factories are shared by every Context the factory builds: start them once, after
	// every controller has registered the informers it needs.
	shared, err := factory.Build("cert-manager-informers")
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	errs := make(chan error, len(loops))
	for i, loop := range loops {
		wg.Add(1)
		go func(name string, loop controllerpkg.Interface) {
			defer wg.Done()
			if err := loop.Run(2, ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				stop()
			}
		}(controllers[i], loop)
	}
	fmt.Println("cert-manager: controllers running:", controllers)
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}
