// The DLMS client session (connect, associate, read, release) over real transports.
