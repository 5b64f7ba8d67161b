from oncall.app import build

build().run()
