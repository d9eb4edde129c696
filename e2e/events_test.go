package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/user"
)

// TestEventsSurviveServiceKill runs the distributed deployment on RabbitMQ
// (2 services relaying their outboxes, a worker consuming), SIGKILLs one
// service in the middle of a burst of registrations, and checks that every
// registration that was answered 201 — a committed change — has its
// user.created event delivered: the killed relay's unfinished batch stays
// in the outbox and the surviving service's relay publishes it. Then the
// reset flow runs end to end with the worker sending the mail.
func TestEventsSurviveServiceKill(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	dsn := testenv.MySQLDSN(t)
	etcd := etcdtest.StartEtcd(t)
	// A namespace of its own: the deployment's exchange and queues on the
	// shared broker are the test's, and deleted when it ends.
	ns := testNamespace(t, amqpURL)
	exchange := ns + ".user.events"

	// A queue of our own on the exchange, declared before any write.
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dial RabbitMQ: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil) // server-named, deleted with the connection
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, string(user.EventCreated), exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	delivered := map[string]int{}
	go func() {
		for d := range deliveries {
			if e, err := user.ParseEvent(d.Body); err == nil {
				mu.Lock()
				delivered[e.UserID]++
				mu.Unlock()
			}
		}
	}()

	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 1, Workers: 1, MySQLDSN: dsn, Etcd: etcd,
		Env: map[string]string{"USERSVC_RABBITMQ_URL": amqpURL, "USERSVC_NAMESPACE": ns}})
	cl := apiclient.New(t, c.GatewayURL())

	const total, workers = 240, 4
	var next atomic.Int64
	var committedMu sync.Mutex
	var committed []string
	statuses := map[int]int{}
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				if i == total/3 {
					if err := c.Services()[0].Kill(); err != nil {
						t.Logf("kill: %v", err)
					}
					close(killed)
				}
				r := cl.Exchange(apiclient.Request{Method: "POST", Path: "/user", Header: apiclient.JSONHeader(""),
					Body: fmt.Appendf(nil, `{"email":"burst%03d@example.com","password":"correct horse battery staple","name":"Burst %d"}`, i, i)})
				var u apiclient.User
				committedMu.Lock()
				statuses[r.Status]++
				if r.Status == 201 {
					r.Decode(&u)
					committed = append(committed, u.ID)
				}
				committedMu.Unlock()
			}
		})
	}
	wg.Wait()
	<-killed
	t.Logf("burst of %d registrations with one service killed after %d: statuses %v", total, total/3, statuses)
	if len(committed) < total*9/10 {
		t.Fatalf("only %d of %d registrations committed", len(committed), total)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, id := range committed {
			if delivered[id] == 0 {
				missing++
			}
		}
		dups := 0
		for _, n := range delivered {
			if n > 1 {
				dups++
			}
		}
		mu.Unlock()
		if missing == 0 {
			t.Logf("all %d committed registrations' events delivered (%d delivered more than once)", len(committed), dups)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d committed registrations never had their user.created event delivered", missing, len(committed))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Reset flow through the gateway; the worker (not the service) mails.
	reg := register(cl, "reset@example.com", "Reset")
	cl.Do("POST", "/user/password", "", map[string]any{"email": reg.Email}).WantStatus(202)
	m := testenv.WaitMail(t, c.MailDir(), reg.Email, resetSubject, 15*time.Second)
	tok := mail.ResetToken(m.Text)
	if tok == "" {
		t.Fatalf("no token in the reset mail:\n%s", m.Text)
	}
	cl.Do("PUT", "/user/password", "", map[string]any{"token": tok, "password": "a brand new passphrase"}).WantStatus(204)
	login(cl, reg.Email, "a brand new passphrase")
	if !c.Workers()[0].LogsContain("reset mail sent") {
		t.Error("the worker did not log sending the reset mail")
	}
}
