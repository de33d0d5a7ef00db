package kbench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Facade is the kfn REST facade as reached from this machine: through the
// Service's ClusterIP (kube-proxy's iptables rules on the node) or, when
// that does not route, through a `kubectl port-forward` this process runs.
type Facade struct {
	Base string // e.g. http://10.96.12.34:80/v1
	Via  string // "service ClusterIP 10.96.12.34:80" or "kubectl port-forward …"
	HTTP *http.Client
	pf   *exec.Cmd
}

// NewHTTPClient is an HTTP client that keeps up to conns connections
// alive per host, so a load loop measures requests, not TCP handshakes.
func NewHTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback and cluster IPs only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// DiscoverFacade finds the facade Service and checks GET /v1/health on its
// ClusterIP; if that fails it starts `kubectl port-forward` (stopped by Close).
func (e *Env) DiscoverFacade(ctx context.Context, namespace, service string, conns int) (*Facade, error) {
	svc := &corev1.Service{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: service}, svc); err != nil {
		return nil, fmt.Errorf("facade service: %w", err)
	}
	port := int32(80)
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			port = p.Port
		}
	}
	f := &Facade{HTTP: NewHTTPClient(conns, 60*time.Second)}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		f.Base = fmt.Sprintf("http://%s/v1", net.JoinHostPort(ip, strconv.Itoa(int(port))))
		f.Via = fmt.Sprintf("service ClusterIP %s:%d (kube-proxy iptables on the node)", ip, port)
		if f.healthy(ctx) {
			return f, nil
		}
	}
	if err := f.portForward(ctx, e.Kubeconfig, namespace, service, port); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Facade) healthy(ctx context.Context) bool {
	for i := 0; i < 5; i++ {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		code, _, err := f.Do(hctx, http.MethodGet, "/health", nil, nil, nil)
		cancel()
		if err == nil && code == http.StatusOK {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)

func (f *Facade) portForward(ctx context.Context, kubeconfig, namespace, service string, port int32) error {
	cmd := exec.Command("kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "port-forward", "--address", "127.0.0.1",
		"svc/"+service, fmt.Sprintf("0:%d", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubectl port-forward: %w", err)
	}
	f.pf = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p := <-found:
		f.Base = "http://127.0.0.1:" + p + "/v1"
		f.Via = "kubectl port-forward 127.0.0.1:" + p + " (the ClusterIP did not answer from the host)"
	case <-time.After(20 * time.Second):
		f.Close()
		return fmt.Errorf("kubectl port-forward did not start")
	case <-ctx.Done():
		f.Close()
		return ctx.Err()
	}
	if !f.healthy(ctx) {
		f.Close()
		return fmt.Errorf("facade not healthy through %s", f.Via)
	}
	return nil
}

// Close stops the port-forward, if this process started one.
func (f *Facade) Close() {
	if f.pf != nil && f.pf.Process != nil {
		_ = syscall.Kill(-f.pf.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = f.pf.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-f.pf.Process.Pid, syscall.SIGKILL)
		}
		f.pf = nil
	}
}

// Do sends one request (path after /v1, query included) as the project's
// API key, and returns the status code and body.
func (f *Facade) Do(ctx context.Context, method, path string, p *Project, body []byte, hdr map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.Base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p != nil {
		req.Header.Set("X-Appwrite-Project", p.Namespace)
		req.Header.Set("X-Appwrite-Key", p.Key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
