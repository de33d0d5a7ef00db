package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// ticks lists the first n ticks after from.
func ticks(t *testing.T, schedule, zone string, from time.Time, n int) []time.Time {
	t.Helper()
	s, err := parseSchedule(schedule, zone)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for x := from; len(out) < n; {
		x = s.Next(x)
		if x.IsZero() {
			break
		}
		out = append(out, x)
	}
	return out
}

func TestParseSchedule(t *testing.T) {
	for schedule, wantErr := range map[string]string{
		"*/5 * * * *":                  "",
		"@daily":                       "",
		"CRON_TZ=Asia/Tokyo 0 9 * * *": "",
		"@every 90s":                   "",
		"@every 30s":                   "at least 1m",
		"every day":                    "expected exactly 5 fields",
		"0 0 * * * *":                  "expected exactly 5 fields",
		"61 * * * *":                   "above maximum",
	} {
		_, err := parseSchedule(schedule, "")
		if wantErr == "" {
			NewWithT(t).Expect(err).NotTo(HaveOccurred(), schedule)
		} else {
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(wantErr)), schedule)
		}
	}
	_, err := parseSchedule("0 * * * *", "Mars/Olympus")
	NewWithT(t).Expect(err).To(HaveOccurred())
}

func TestScheduleTicksInTimeZones(t *testing.T) {
	berlin, tokyo := mustLoad(t, "Europe/Berlin"), mustLoad(t, "Asia/Tokyo")
	utc := func(s string) time.Time {
		x, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for name, tc := range map[string]struct {
		schedule, zone string
		from           time.Time
		want           []time.Time
	}{
		"UTC when no zone is given, whatever the operator's local zone": {
			"0 9 * * *", "", utc("2026-06-01T10:00:00Z"),
			[]time.Time{utc("2026-06-02T09:00:00Z"), utc("2026-06-03T09:00:00Z")},
		},
		"time zone": {
			"0 9 * * *", "Asia/Tokyo", utc("2026-06-01T10:00:00Z"),
			[]time.Time{time.Date(2026, 6, 2, 9, 0, 0, 0, tokyo), time.Date(2026, 6, 3, 9, 0, 0, 0, tokyo)},
		},
		"timeZone wins over a CRON_TZ prefix": {
			"CRON_TZ=Asia/Tokyo 0 9 * * *", "Europe/Berlin", utc("2026-06-01T10:00:00Z"),
			[]time.Time{time.Date(2026, 6, 2, 9, 0, 0, 0, berlin), time.Date(2026, 6, 3, 9, 0, 0, 0, berlin)},
		},
		"CRON_TZ prefix alone": {
			"CRON_TZ=Asia/Tokyo 0 9 * * *", "", utc("2026-06-01T10:00:00Z"),
			[]time.Time{time.Date(2026, 6, 2, 9, 0, 0, 0, tokyo), time.Date(2026, 6, 3, 9, 0, 0, 0, tokyo)},
		},
		"spring forward: 02:30 does not exist on 2026-03-29 in Berlin and does not fire": {
			"30 2 * * *", "Europe/Berlin", time.Date(2026, 3, 27, 12, 0, 0, 0, berlin),
			[]time.Time{time.Date(2026, 3, 28, 2, 30, 0, 0, berlin), time.Date(2026, 3, 30, 2, 30, 0, 0, berlin)},
		},
		"fall back: 02:30 happens twice on 2026-10-25 in Berlin and fires once": {
			"30 2 * * *", "Europe/Berlin", time.Date(2026, 10, 24, 12, 0, 0, 0, berlin),
			[]time.Time{utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")},
		},
		"fall back: a schedule naming every hour follows elapsed time": {
			"30 * * * *", "Europe/Berlin", utc("2026-10-24T23:45:00Z"),
			[]time.Time{utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:30:00Z"), utc("2026-10-25T02:30:00Z")},
		},
		"@every is anchored to the Unix epoch": {
			"@every 10m", "", utc("2026-06-01T10:03:17Z"),
			[]time.Time{utc("2026-06-01T10:10:00Z"), utc("2026-06-01T10:20:00Z")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := ticks(t, tc.schedule, tc.zone, tc.from, len(tc.want))
			g := NewWithT(t)
			g.Expect(got).To(HaveLen(len(tc.want)))
			for i := range tc.want {
				g.Expect(got[i]).To(BeTemporally("==", tc.want[i]), "tick %d: %s", i, got[i])
			}
		})
	}
}

func TestPlanTicks(t *testing.T) {
	at := func(hhmmss string) time.Time {
		x, err := time.Parse(time.RFC3339, "2026-06-01T"+hhmmss+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	every5, err := parseSchedule("*/5 * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		last, now time.Time
		deadline  *int64
		want      tickPlan
	}{
		"before the first tick": {
			at("10:01:00"), at("10:04:59"), nil,
			tickPlan{Next: at("10:05:00")},
		},
		"on the tick": {
			at("10:01:00"), at("10:05:00"), nil,
			tickPlan{Run: at("10:05:00"), Next: at("10:10:00")},
		},
		"a little late": {
			at("10:01:00"), at("10:05:03"), nil,
			tickPlan{Run: at("10:05:00"), Next: at("10:10:00")},
		},
		"the tick already ran": {
			at("10:05:00"), at("10:07:00"), nil,
			tickPlan{Next: at("10:10:00")},
		},
		"three missed ticks run once, the latest": {
			at("10:00:00"), at("10:17:00"), nil,
			tickPlan{Run: at("10:15:00"), Missed: 2, Next: at("10:20:00")},
		},
		"missed ticks within the starting deadline": {
			at("10:00:00"), at("10:17:00"), ptr.To[int64](180),
			tickPlan{Run: at("10:15:00"), Missed: 2, Next: at("10:20:00")},
		},
		"the latest tick is past the starting deadline": {
			at("10:00:00"), at("10:17:00"), ptr.To[int64](60),
			tickPlan{TooLate: at("10:15:00"), Missed: 3, Next: at("10:20:00")},
		},
		"deadline 0 runs only exactly on time": {
			at("10:00:00"), at("10:05:00"), ptr.To[int64](0),
			tickPlan{Run: at("10:05:00"), Next: at("10:10:00")},
		},
		"a week down: one run, counting stops at 100": {
			at("10:00:00").AddDate(0, 0, -7), at("10:17:00"), nil,
			tickPlan{Run: at("10:15:00"), Missed: maxCountedTicks - 1, Next: at("10:20:00")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(planTicks(every5, tc.last, tc.now, tc.deadline)).To(Equal(tc.want))
		})
	}

	// A year of per-minute ticks missed: still one run, found fast.
	everyMinute, _ := parseSchedule("* * * * *", "")
	start := time.Now()
	p := planTicks(everyMinute, at("10:00:00").AddDate(-1, 0, 0), at("10:17:30"), nil)
	NewWithT(t).Expect(p.Run).To(Equal(at("10:17:00")))
	NewWithT(t).Expect(time.Since(start)).To(BeNumerically("<", time.Second))

	// A yearly schedule several years behind finds its latest tick.
	yearly, _ := parseSchedule("0 0 1 1 *", "")
	p = planTicks(yearly, at("10:00:00").AddDate(-3, 0, 0), at("10:00:00"), nil)
	NewWithT(t).Expect(p.Run).To(Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	NewWithT(t).Expect(p.Missed).To(Equal(2))
}

func TestTickNames(t *testing.T) {
	g := NewWithT(t)
	tick := time.Date(2026, 6, 1, 10, 15, 0, 0, time.UTC)
	g.Expect(tickName("report", tick)).To(Equal("report-29671815"))
	g.Expect(tickName("report", tick)).NotTo(Equal(tickName("report", tick.Add(time.Minute))))
	long := strings.Repeat("f", 80)
	g.Expect(len(tickName(long, tick))).To(BeNumerically("<=", 63))
	g.Expect(validation.IsDNS1123Subdomain(tickName(long, tick))).To(BeEmpty())
	g.Expect(tickName(long, tick)).NotTo(Equal(tickName(long, tick.Add(time.Minute))))
}
