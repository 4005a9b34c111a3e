"""qiaoqiao: the GraphQL backend of a WeChat Mini Program for user discovery and whispers."""
