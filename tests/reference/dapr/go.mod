module meshswitch/reference/dapr

// Dependencies are not pinned here: mk/reference-dapr.mk generates the real
// go.mod/go.sum for a given Dapr checkout (SRC) into a build directory outside
// the repo and builds with -modfile.
go 1.25
