package opcua

// KillSubscription deletes the driver's subscription on the server behind its
// back, as upstream gopcua #910 leaves it; the watchdog must notice.
func KillSubscription(d *Driver) { d.killSub <- struct{}{} }

// EnableTestHooks must be called before Connect.
func EnableTestHooks(d *Driver) { d.killSub = make(chan struct{}) }
