"""The demo: live workflow apps that move between clusters, and `migrate demo` itself."""
