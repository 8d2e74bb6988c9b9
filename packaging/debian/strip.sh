#!/bin/sh
# strip(1) as dh_strip calls it: also drops the .comment and .note sections (compiler banners),
# which Debian's packages do not ship. build-deb.sh hands it to CPack as CMAKE_STRIP.
exec strip --remove-section=.comment --remove-section=.note "$@"
