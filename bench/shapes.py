"""The feed page as real clients send it: the same data in three shapes.

Used by bench/feed.py (each shape to qiaoqiao and to PostGraphile) and by
tests/test_fastpath_shapes.py (each shape answered alike by the compiled path and the
interpreter, and pinned to the compiled path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    variables: dict[str, Any]
    operation: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query}
        if self.variables:
            body["variables"] = self.variables
        if self.operation:
            body["operationName"] = self.operation
        return body


# What bench.feed has always sent: no __typename, no fragments.
BENCHMARK = Shape(
    "benchmark",
    "{ users(first: 20) { edges { node { id profile { nickname city bio "
    "institution { name city } } projects(first: 5) { edges { node { title role } } } } } } }",
    {},
)

# Apollo Client 4 with its defaults: `__typename` added to every selection set (the
# InMemoryCache needs it), an operation name, variables (one with a default), and the ids the
# cache normalizes by.
APOLLO = Shape(
    "Apollo Client",
    """query UsersFeed($first: Int = 20, $after: String, $projects: Int!) {
  users(first: $first, after: $after) {
    edges {
      cursor
      node {
        id
        profile {
          nickname
          city
          bio
          institution {
            id
            name
            city
            __typename
          }
          __typename
        }
        projects(first: $projects) {
          edges {
            node {
              id
              title
              role
              __typename
            }
            __typename
          }
          __typename
        }
        __typename
      }
      __typename
    }
    pageInfo {
      hasNextPage
      endCursor
      __typename
    }
    __typename
  }
}""",
    {"projects": 5},
    "UsersFeed",
)

# Relay: one named fragment per component, spread where the component renders; the compiler
# (relay-compiler) adds `id` and `__typename` and the connection's `cursor`/`pageInfo`.
RELAY = Shape(
    "Relay fragments",
    """query FeedPageQuery($count: Int!, $cursor: String) {
  users(first: $count, after: $cursor) {
    ...FeedList_users
  }
}

fragment FeedList_users on UserConnection {
  edges {
    cursor
    node {
      id
      ...UserCard_user
      __typename
    }
  }
  pageInfo {
    endCursor
    hasNextPage
  }
}

fragment UserCard_user on User {
  id
  profile {
    ...ProfileHeader_profile
  }
  projects(first: 5) {
    edges {
      node {
        ...ProjectChip_project
        id
      }
    }
  }
}

fragment ProfileHeader_profile on Profile {
  nickname
  city
  bio
  institution {
    ...InstitutionBadge_institution
    id
  }
}

fragment InstitutionBadge_institution on Institution {
  name
  city
}

fragment ProjectChip_project on Project {
  title
  role
}""",
    {"count": 20, "cursor": None},
    "FeedPageQuery",
)

SHAPES = (BENCHMARK, APOLLO, RELAY)
