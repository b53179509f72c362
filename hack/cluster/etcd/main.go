// Command etcd is the upstream etcd server, built from its Go module.
//
// etcd's root module (go.etcd.io/etcd/v3) uses replace lines and cannot be
// `go install`ed; its main only calls etcdmain.Main, so this wrapper does the same.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
