package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/events/rabbitmq"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/worker"
)

// TestNamespacesSeparateDeployments: two deployments (each a service, an
// API, a worker and a gateway, with their own database and etcd) share one
// RabbitMQ and one Redis, told apart only by USERSVC_NAMESPACE. A reset
// requested in one is mailed by that one's worker alone, and failed logins
// in one never rate-limit the same email in the other — while within one
// deployment the limit holds (it lives in the shared Redis).
func TestNamespacesSeparateDeployments(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	redisURL := testenv.RedisURL(t)
	start := func() (*cluster.Cluster, *apiclient.Client) {
		ns := testNamespace(t, amqpURL)
		c := cluster.Start(t, cluster.Options{Services: 1, APIs: 1, Workers: 1, MySQLDSN: testenv.MySQLDSN(t),
			Etcd: etcdtest.StartEtcd(t), Env: map[string]string{"USERSVC_NAMESPACE": ns,
				"USERSVC_RABBITMQ_URL": amqpURL, "USERSVC_REDIS_URL": redisURL, "USERSVC_RATE_LOGIN_ACCOUNT": "3/1m"}})
		return c, apiclient.New(t, c.GatewayURL())
	}
	a, ca := start()
	b, cb := start()

	for _, d := range []struct {
		c          *cluster.Cluster
		cl         *apiclient.Client
		other      *cluster.Cluster
		email, who string
	}{{a, ca, b, "only-a@example.com", "A"}, {b, cb, a, "only-b@example.com", "B"}} {
		register(d.cl, d.email, d.who)
		d.cl.Do("POST", "/user/password", "", map[string]any{"email": d.email}).WantStatus(202)
		testenv.WaitMail(t, d.c.MailDir(), d.email, resetSubject, 20*time.Second)
	}
	// Each reset is mailed once, by its own deployment's worker: the other
	// deployment's mail directory holds only its own user's mail.
	for _, d := range []struct {
		c     *cluster.Cluster
		email string
	}{{a, "only-b@example.com"}, {b, "only-a@example.com"}} {
		for _, m := range readMail(t, d.c.MailDir()) {
			if strings.Contains(m.Header.Get("To"), d.email) {
				t.Errorf("the other deployment's worker mailed %s: cross-talk on the broker", d.email)
			}
		}
	}

	const victim = "victim@example.com"
	bad := map[string]any{"email": victim, "password": "not the password"}
	for range 3 {
		ca.Do("POST", "/user/token", "", bad).WantStatus(401)
	}
	ca.Do("POST", "/user/token", "", bad).WantStatus(429) // A's limit is spent
	cb.Do("POST", "/user/token", "", bad).WantStatus(401) // B's is its own
}

// testNamespace returns a namespace of the test's own and, when the test
// ends, deletes the exchange and queues a deployment in it declared on the
// shared broker, and the keys it left in the shared Redis (some, such as
// the revocation list's sync marker, have no expiry).
func testNamespace(t *testing.T, amqpURL string) string {
	ns := "test-" + testenv.RandomHex(4)
	if redisURL := os.Getenv("USERSVC_TEST_REDIS_URL"); redisURL != "" {
		t.Cleanup(func() { deleteRedisKeys(t, redisURL, "usersvc:"+ns+":*") })
	}
	testenv.RabbitMQCleanup(t, amqpURL, func(ch *amqp.Channel) {
		for _, sub := range []events.Subscription{worker.MailerSubscription, worker.IndexerSubscription} {
			q := ns + "." + sub.Queue
			for _, name := range []string{q, rabbitmq.RetryQueue(q), rabbitmq.DeadLetterQueue(q)} {
				if _, err := ch.QueueDelete(name, false, false, false); err != nil {
					t.Errorf("cleanup: delete queue %s: %v", name, err)
					return // the channel is closed after an error
				}
			}
		}
		if err := ch.ExchangeDelete(ns+"."+events.Exchange, false, false); err != nil {
			t.Errorf("cleanup: delete exchange: %v", err)
		}
	})
	return ns
}

// deleteRedisKeys removes the keys matching pattern from the Redis at url.
func deleteRedisKeys(t *testing.T, url, pattern string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 100).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("cleanup: delete %s: %v", iter.Val(), err)
			return
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("cleanup: scan %s: %v", pattern, err)
	}
}
