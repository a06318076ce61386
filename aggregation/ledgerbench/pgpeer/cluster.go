package pgpeer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoServer: the PostgreSQL server binaries (initdb, postgres) were not
// found.
var ErrNoServer = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH, in /usr/local/bin or in /usr/lib/postgresql/*/bin: install the Debian package postgresql (apt-get install postgresql)")

// FindServer returns the directory holding both initdb and postgres: the
// first of the directory of initdb on PATH, /usr/local/bin and
// /usr/lib/postgresql/<version>/bin (highest version first). It returns
// ErrNoServer if there is none.
func FindServer() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	dirs = append(dirs, "/usr/local/bin")
	vers, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(vers, func(i, j int) bool { return pgVersion(vers[i]) > pgVersion(vers[j]) })
	dirs = append(dirs, vers...)
	return findServerIn(dirs)
}

// findServerIn returns the first of dirs holding both initdb and postgres.
func findServerIn(dirs []string) (string, error) {
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoServer
}

// pgVersion is the major version in /usr/lib/postgresql/<version>/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// dbUser is the database superuser of the throwaway cluster (trust
// authentication over its private unix socket).
const dbUser = "bench"

// cluster is a throwaway PostgreSQL server: data directory, unix socket and
// server log in one temporary directory, removed by Close. The socket is
// the only way in (listen_addresses is empty).
type cluster struct {
	dir     string // temporary directory: data/, the socket, server.log
	osUser  string // who runs the server
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	version string

	closeOnce sync.Once
	closeErr  error
}

// serverSettings are the settings the peer runs with, besides the socket.
// Durability is PostgreSQL's default and full: fsync, synchronous_commit
// and full_page_writes on, wal_sync_method left at its default (fdatasync
// on Linux). The rest is what one would set on a machine with a few GB of
// memory for a write-heavy load: WAL big enough that no checkpoint falls in
// the measured phase, enough connections.
func serverSettings(conns int, noSync bool) [][2]string {
	durable := "on"
	if noSync {
		durable = "off"
	}
	return [][2]string{
		{"fsync", durable},
		{"synchronous_commit", durable},
		{"full_page_writes", "on"},
		{"shared_buffers", "256MB"},
		{"max_wal_size", "8GB"},
		{"checkpoint_timeout", "30min"},
		{"max_connections", strconv.Itoa(conns + 10)},
	}
}

// reportedSettings are read back from the running server into the Result.
var reportedSettings = []string{"fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "wal_buffers", "max_wal_size", "checkpoint_timeout", "max_connections"}

// serverUser is who runs the server. initdb and postgres refuse to run as
// root: as root, the server runs as the system user postgres (which the
// Debian package creates) if there is one, else as nobody; otherwise as
// whoever runs the benchmark. No user is created.
func serverUser() (string, *syscall.Credential, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return strconv.Itoa(os.Geteuid()), nil, nil
		}
		return u.Username, nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return name, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return "", nil, errors.New("running as root and neither user postgres nor nobody exists to run the PostgreSQL server (initdb refuses root): create one, e.g. useradd --system postgres")
}

// startCluster initialises and starts a throwaway cluster. On error
// everything it made is stopped and removed.
func startCluster(ctx context.Context, conns int, noSync bool) (c *cluster, err error) {
	bin, err := FindServer()
	if err != nil {
		return nil, err
	}
	name, cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tracline-pgpeer-")
	if err != nil {
		return nil, err
	}
	c = &cluster{dir: dir, osUser: name, cred: cred, exited: make(chan struct{})}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return c, fmt.Errorf("chown %s to %s: %w", dir, name, err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", dbUser, "--auth=trust", "--encoding=UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return c, fmt.Errorf("initdb (as %s): %w: %s", name, err, tail(string(out), 2000))
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return c, err
	}
	defer logf.Close() // the server has its own copy of the descriptor
	args := []string{"-D", data, "-c", "listen_addresses=", "-c", "unix_socket_directories=" + dir, "-c", "unix_socket_permissions=0700"}
	for _, s := range serverSettings(conns, noSync) {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C at the terminal reaches us, and we
	// stop the server (Close). Pdeathsig: if we die without Close (SIGKILL),
	// the kernel kills the server too; its data directory is then left in
	// the temporary directory.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits:
		// keep this goroutine, and so its thread, until the server exits.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(c.exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return c, fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd

	// Wait until it takes connections, it exits, or 60 s.
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := c.connect(ctx)
		if err == nil {
			verr := conn.QueryRow(ctx, "SHOW server_version").Scan(&c.version)
			conn.Close(ctx)
			if verr != nil {
				return c, fmt.Errorf("postgres: %w", verr)
			}
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("postgres did not take connections within 60 s: %w; server log: %s", err, c.logTail())
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-c.exited:
			return c, fmt.Errorf("postgres exited at start; server log: %s", c.logTail())
		case <-tick.C:
		}
	}
}

// connString is the DSN of the cluster's database.
func (c *cluster) connString() string {
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=postgres sslmode=disable", c.dir, dbUser)
}

func (c *cluster) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.connString())
}

func (c *cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	return tail(string(b), 2000)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// Close stops the server (a fast shutdown; killed if it has not stopped
// within 30 s) and removes the temporary directory. Safe after a
// half-finished start, and more than once.
func (c *cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil {
			select {
			case <-c.exited:
			default:
				c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
				select {
				case <-c.exited:
				case <-time.After(30 * time.Second):
					syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
					<-c.exited
					c.closeErr = errors.New("postgres did not stop within 30 s: killed")
				}
			}
		}
		if err := os.RemoveAll(c.dir); err != nil && !errors.Is(err, fs.ErrNotExist) && c.closeErr == nil {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// cpu is the CPU time the server has used so far: the postmaster with the
// children it has reaped, and its children still running (every server
// process is a child of the postmaster).
// /proc/PID/stat counts in USER_HZ, 100 per second on Linux.
func (c *cluster) cpu() time.Duration {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	pg := c.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, fields count
		// from after its closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); pid != pg && ppid != pg {
			continue
		}
		n := 2 // utime, stime (fields 14, 15)
		if pid == pg {
			n = 4 // and cutime, cstime of reaped children
		}
		for _, v := range f[11 : 11+n] {
			t, _ := strconv.ParseInt(v, 10, 64)
			ticks += t
		}
	}
	return time.Duration(ticks) * (time.Second / 100)
}
