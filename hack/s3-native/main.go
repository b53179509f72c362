// Command s3-native copies a folder to an S3 prefix, or a prefix to a folder, with minio-go (the
// library MinIO's `mc` is built on) and its defaults: FPutObject (multipart above 16 MiB, parts
// uploaded 4 at a time) and FGetObject (one streamed GET per object), several files at a time as
// `mc cp --recursive` does. It is the server-native baseline of bench/object_storage.py.
//
//	s3-native put|get -endpoint http://127.0.0.1:18333 -bucket B -prefix P -dir D [-parallel 4]
//
// The keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never from arguments. On
// success it prints one JSON line: {"files": N, "bytes": N, "seconds": S, "peakRssKiB": N}, the
// seconds being those of the transfer (listing included), not of the process's start, and the
// peak RSS the kernel's high-water mark of this process (VmHWM).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type job struct {
	key, path string
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "put" && os.Args[1] != "get") {
		fmt.Fprintln(os.Stderr, "usage: s3-native put|get -endpoint URL -bucket B -prefix P -dir D [-parallel N]")
		os.Exit(2)
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet("s3-native "+mode, flag.ExitOnError)
	endpoint := flags.String("endpoint", "", "the server's URL, e.g. http://127.0.0.1:18333")
	bucket := flags.String("bucket", "", "the bucket")
	prefix := flags.String("prefix", "", "the key prefix (a folder: ends with /)")
	dir := flags.String("dir", "", "the local folder to upload from or download into")
	parallel := flags.Int("parallel", 4, "files transferred at a time")
	region := flags.String("region", "us-east-1", "the region to sign for")
	_ = flags.Parse(os.Args[2:])
	if err := run(mode, *endpoint, *region, *bucket, *prefix, *dir, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "s3-native:", err)
		os.Exit(1)
	}
}

func run(mode, endpoint, region, bucket, prefix, dir string, parallel int) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-endpoint %q: not a URL such as http://127.0.0.1:18333", endpoint)
	}
	if bucket == "" || dir == "" || parallel < 1 {
		return errors.New("-bucket and -dir are required, -parallel at least 1")
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(id, secret, os.Getenv("AWS_SESSION_TOKEN")),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	started := time.Now()
	jobs := make(chan job)
	var files, size atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for j := range jobs {
				var n int64
				var err error
				if mode == "put" {
					var info minio.UploadInfo
					info, err = client.FPutObject(ctx, bucket, j.key, j.path, minio.PutObjectOptions{})
					n = info.Size
				} else {
					err = client.FGetObject(ctx, bucket, j.key, j.path, minio.GetObjectOptions{})
					if err == nil {
						var st os.FileInfo
						if st, err = os.Stat(j.path); err == nil {
							n = st.Size()
						}
					}
				}
				if err != nil {
					once.Do(func() { first = fmt.Errorf("%s s3://%s/%s: %w", mode, bucket, j.key, err) })
					continue
				}
				files.Add(1)
				size.Add(n)
			}
		})
	}
	var walkErr error
	if mode == "put" {
		walkErr = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			jobs <- job{key: prefix + filepath.ToSlash(rel), path: path}
			return nil
		})
	} else {
		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				walkErr = obj.Err
				break
			}
			if strings.HasSuffix(obj.Key, "/") {
				continue
			}
			jobs <- job{key: obj.Key, path: filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(obj.Key, prefix)))}
		}
	}
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		return walkErr
	}
	if first != nil {
		return first
	}
	seconds := time.Since(started).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"files": files.Load(), "bytes": size.Load(), "seconds": seconds, "peakRssKiB": peakRSS(),
	})
}

// peakRSS is the kernel's high-water mark of this process's resident memory (VmHWM), in KiB.
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscan(rest, &kib); err == nil {
				return kib
			}
		}
	}
	return -1
}
