"""Where inputs come from and outputs go: model and dataset sources (`sources`: hub, `pvc://`,
`s3://`, the built-in tiny model), the object store's transfers with their checks
(`object_store`, `object_upload`, `object_checks`), and checkpoints kept in a bucket
(`checkpoint_store`)."""
