package apiserver

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// countingReader counts the GETs that reach it.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// Credentials are read once per TTL, however many requests ask at once,
// and a missing Secret is remembered as missing for as long.
func TestCredentialsAreReadOncePerTTL(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "p", Name: APIKeysSecretName}, Data: map[string][]byte{"a.hash": []byte("x")}}
	reader := &countingReader{Reader: fake.NewClientBuilder().WithObjects(secret).Build()}
	c := newCredentials(reader, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			data, err := c.data(context.Background(), "p", APIKeysSecretName)
			if err != nil || string(data["a.hash"]) != "x" {
				t.Errorf("data = %v, %v", data, err)
			}
		})
	}
	wg.Wait()
	if n := reader.gets.Load(); n != 1 {
		t.Fatalf("50 concurrent reads made %d GETs, want 1", n)
	}
	for range 3 {
		if data, err := c.data(context.Background(), "p", JWTSecretName); err != nil || data != nil {
			t.Fatalf("a missing Secret reads as %v, %v; want nil, nil", data, err)
		}
	}
	if n := reader.gets.Load(); n != 2 {
		t.Fatalf("a missing Secret read 3 times made %d GETs in all, want 2", n)
	}
	now = now.Add(time.Minute)
	if _, err := c.data(context.Background(), "p", APIKeysSecretName); err != nil {
		t.Fatal(err)
	}
	if n := reader.gets.Load(); n != 3 {
		t.Fatalf("after the TTL: %d GETs in all, want 3", n)
	}
}
