package apiserver

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxHeldCredentials bounds the credentials held before expired ones are
// dropped; only project namespaces are ever looked up, so it is their
// number that counts.
const maxHeldCredentials = 4096

// credentials reads a project's credential Secrets (APIKeysSecretName,
// JWTSecretName) by name, with a GET in their namespace: the facade may
// read them only there (internal/projectaccess), never list or watch
// Secrets. Each answer is kept for ttl, so a busy project costs the API
// server one GET per Secret per ttl, and a changed or revoked key takes
// effect within ttl.
type credentials struct {
	reader client.Reader
	ttl    time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu   sync.Mutex
	held map[types.NamespacedName]heldSecret
}

// heldSecret is a Secret's data as read at fetched; nil when there was no
// such Secret. It is shared by every request: read it, never change it.
type heldSecret struct {
	data    map[string][]byte
	fetched time.Time
}

func newCredentials(reader client.Reader, ttl time.Duration) *credentials {
	return &credentials{reader: reader, ttl: ttl, now: time.Now, held: map[types.NamespacedName]heldSecret{}}
}

// data returns the data of the Secret name in namespace, nil when it does
// not exist.
func (c *credentials) data(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if data, ok := c.fresh(key); ok {
		return data, nil
	}
	// Concurrent requests of one project share one GET; it outlives a
	// caller that gives up, as the others still wait for it.
	v, err, _ := c.flight.Do(key.String(), func() (any, error) {
		if data, ok := c.fresh(key); ok { // a GET that ended just now
			return data, nil
		}
		return c.fetch(context.WithoutCancel(ctx), key)
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string][]byte), nil
}

// fresh returns what was read of key less than ttl ago.
func (c *credentials) fresh(key types.NamespacedName) (map[string][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.held[key]
	if !ok || c.now().Sub(h.fetched) >= c.ttl {
		return nil, false
	}
	return h.data, true
}

func (c *credentials) fetch(ctx context.Context, key types.NamespacedName) (map[string][]byte, error) {
	fetched := c.now()
	secret := &corev1.Secret{}
	if err := c.reader.Get(ctx, key, secret); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) >= maxHeldCredentials {
		for k, h := range c.held {
			if fetched.Sub(h.fetched) >= c.ttl {
				delete(c.held, k)
			}
		}
	}
	c.held[key] = heldSecret{data: secret.Data, fetched: fetched}
	return secret.Data, nil
}
