package apiserver

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// limits are the rate limits on creating executions: Appwrite 1.0's,
// which only formats before 1.4 see, and the facade's own, in every format.
type limits struct {
	// appwrite is per IP+user, for formats before 1.4, never for API keys.
	appwrite *limiter.Limiter
	// ip (guests and users), user and key (API keys) protect the facade
	// and the cluster; nil when disabled.
	ip, user, key *limiter.Limiter
}

func newLimits(o Options) limits {
	rate := func(n int, period time.Duration) *limiter.Limiter {
		if n <= 0 {
			return nil
		}
		return limiter.New(memory.NewStore(), limiter.Rate{Period: period, Limit: int64(n)})
	}
	return limits{
		appwrite: rate(o.RateLimit, o.RatePeriod),
		ip:       rate(o.IPLimit, o.LimitPeriod),
		user:     rate(o.UserLimit, o.LimitPeriod),
		key:      rate(o.KeyLimit, o.LimitPeriod),
	}
}

// rateLimit applies Appwrite 1.0's limit on creating executions: per IP
// and user, for formats before 1.4, never for API keys.
func (s *Server) rateLimit(c *gin.Context) {
	who := callerOf(c)
	if s.limits.appwrite == nil || formatOf(c).atLeast(v1_4) || who.kind == apiKey {
		return
	}
	key := fmt.Sprintf("%s/ip:%s,userId:%s", c.GetString(ctxProject), c.ClientIP(), who.userID)
	lc, err := s.limits.appwrite.Get(c, key)
	if err != nil {
		abort(c, internalError(err))
		return
	}
	c.Header("X-RateLimit-Limit", strconv.FormatInt(lc.Limit, 10))
	c.Header("X-RateLimit-Remaining", strconv.FormatInt(lc.Remaining, 10))
	c.Header("X-RateLimit-Reset", strconv.FormatInt(lc.Reset, 10))
	if lc.Reached {
		abort(c, newError(errRateLimit))
	}
}

// protect applies the facade's own limits on creating executions, in
// every format: guests and users per client IP, users also per user, API
// keys per key (Appwrite exempts keys from its limit, and one server
// behind one address may send many: the IP limit is not theirs). A
// refused request is answered 429 with Retry-After.
func (s *Server) protect(c *gin.Context) {
	who := callerOf(c)
	project := c.GetString(ctxProject)
	type check struct {
		l   *limiter.Limiter
		key string
	}
	var checks []check
	switch who.kind {
	case apiKey:
		checks = []check{{s.limits.key, project + "/" + who.keyName}}
	case user:
		checks = []check{{s.limits.ip, c.ClientIP()}, {s.limits.user, project + "/" + who.userID}}
	default:
		checks = []check{{s.limits.ip, c.ClientIP()}}
	}
	for _, ch := range checks {
		if ch.l == nil {
			continue
		}
		lc, err := ch.l.Get(c, ch.key)
		if err != nil {
			abort(c, internalError(err))
			return
		}
		if lc.Reached {
			aerr := newError(errRateLimit)
			aerr.retryAfter = max(lc.Reset-time.Now().Unix(), 1)
			abort(c, aerr)
			return
		}
	}
}

// budget bounds the bytes of request bodies held in memory at once: a
// semaphore weighted by each body's size that never waits, so a request
// that does not fit is refused before its body is read.
type budget struct {
	mu         sync.Mutex
	used, size int64
}

func newBudget(size int64) *budget { return &budget{size: size} }

// take reserves n bytes; false when they do not fit.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.size {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// inUse is how many bytes are reserved (tests).
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
