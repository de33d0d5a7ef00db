package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// watcher follows the objects of a namespace until want of them are
// finished, noting when each one was first seen finished.
type watcher struct {
	done chan struct{}
	res  []time.Duration
	bad  int
	err  error

	start    time.Time
	finished func(client.Object) (bool, bool)
	seen     map[string]time.Duration // by the following goroutine only
}

func (w *watcher) wait() ([]time.Duration, int, error) {
	<-w.done
	return w.res, w.bad, w.err
}

// startWatch lists, then watches from the list's resourceVersion (and
// lists again when a watch ends), until want objects are finished or ctx
// ends. finished returns (finished, good). It returns after the first list.
func (b *bench) startWatch(ctx context.Context, list client.ObjectList, ns string, want int, start time.Time, finished func(client.Object) (bool, bool)) *watcher {
	w := &watcher{done: make(chan struct{}), start: start, finished: finished, seen: map[string]time.Duration{}}
	ready := make(chan struct{})
	go w.follow(ctx, b.env.Client, list, ns, want, ready)
	select {
	case <-ready:
	case <-w.done:
	}
	return w
}

func (w *watcher) note(o client.Object) {
	if _, ok := w.seen[o.GetName()]; ok {
		return
	}
	if fin, good := w.finished(o); fin {
		w.seen[o.GetName()] = time.Since(w.start)
		if !good {
			w.bad++
		}
	}
}

// follow lists and watches until want objects are finished; it closes
// ready after the first list.
func (w *watcher) follow(ctx context.Context, c client.WithWatch, list client.ObjectList, ns string, want int, ready chan struct{}) {
	defer close(w.done)
	first := true
	for len(w.seen) < want {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			w.err = err
			return
		}
		items, _ := meta.ExtractList(l)
		for _, it := range items {
			w.note(it.(client.Object))
		}
		if first {
			close(ready)
			first = false
		}
		if len(w.seen) >= want {
			break
		}
		if err := w.watchFrom(ctx, c, list, ns, l.GetResourceVersion(), want); err != nil {
			w.err = err
			return
		}
	}
	for _, d := range w.seen {
		w.res = append(w.res, d)
	}
	sort.Slice(w.res, func(i, j int) bool { return w.res[i] < w.res[j] })
}

// watchFrom notes the events from resourceVersion rv until want objects
// are finished or the watch ends (nil), or ctx ends (an error).
func (w *watcher) watchFrom(ctx context.Context, c client.WithWatch, list client.ObjectList, ns, rv string, want int) error {
	wt, err := c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
	if err != nil {
		return err
	}
	defer wt.Stop()
	for len(w.seen) < want {
		select {
		case ev, ok := <-wt.ResultChan():
			if !ok || ev.Type == watch.Error {
				return nil
			}
			if o, ok := ev.Object.(client.Object); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				w.note(o)
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d finished: %w", len(w.seen), want, ctx.Err())
		}
	}
	return nil
}
