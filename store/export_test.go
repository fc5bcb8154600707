package store

// UpgradeTo returns opts with migrations stopping at version v.
func UpgradeTo(opts Options, v int) Options {
	opts.upgradeTo = v
	return opts
}
